#!/usr/bin/env python3
"""Synthetic mongodump directories of a clinic's workload, for Ancre's benchmarks.

Two modes:

  generate_dump.py --out DIR [--size-mb 300] [--seed 1]
      Writes DIR/clinic/{patients,appointments,messages}.bson and their
      .metadata.json, about --size-mb MB (10^6 bytes) of BSON in all.

  generate_dump.py --mutate-from DIR --out DIR2 [--updates 1.0] [--inserts 0.5]
                   [--deletes 0] [--skewed] [--seed 2]
      Copies DIR to DIR2 as the next dump of the same database: --updates percent
      of each collection's documents get small realistic updates (status changes,
      counters, an appended array element, an edited note: sizes change slightly),
      --inserts percent new documents are appended with newer ObjectIds, and
      --deletes percent are removed. With --skewed, 90% of the updates hit the
      newest 10% of _ids (by ObjectId), the rest the older 90%.

The documents look like a clinic's: `patients` (nested address, insurance,
allergies, medications, notes), `appointments` (references, datetimes, status
strings, Decimal128 fees, double vitals) and `messages` (chat text of 100 B to
4 KB, mixed unicode). They mix int32, int64, double, decimal128, bool, date,
binary (generic, MD5, UUID), null, arrays and nested documents. `_id`s are
ObjectIds made like a driver makes them (4 app servers, each with its random
5-byte value and counter), with timestamps increasing as documents are inserted,
faster in recent years; files hold documents in insertion (natural) order, so
they are close to, but not exactly, `_id` order.

Text is drawn word by word from a Zipf-weighted vocabulary (no random bytes), so
it compresses like real text. Output is a function of the arguments alone
(--jobs does not change it): each collection has its own seeded random stream.
"""

from __future__ import annotations

import argparse
import bisect
import json
import math
import multiprocessing
import os
import random
import shutil
import struct
import sys
import time
import unicodedata

import bson
from bson.binary import Binary
from bson.codec_options import CodecOptions, DatetimeConversion
from bson.datetime_ms import DatetimeMS
from bson.decimal128 import Decimal128
from bson.int64 import Int64
from bson.objectid import ObjectId

DB = "clinic"
COLLECTIONS = ("patients", "appointments", "messages")
# Share of the dump's bytes per collection, and a rough mean document size used to
# spread timestamps (the generator stops on bytes, not on this estimate).
SHARE = {"patients": 0.30, "appointments": 0.25, "messages": 0.45}
MEAN_SIZE = {"patients": 2090, "appointments": 560, "messages": 1310}

EPOCH_START = 1546300800  # 2019-01-01T00:00:00Z
EPOCH_END = 1748736000  # 2025-06-01T00:00:00Z
MUTATION_WINDOW = 2 * 3600  # a second dump is taken two hours after the first

DECODE_OPTS = CodecOptions(datetime_conversion=DatetimeConversion.DATETIME_MS)

# --------------------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------------------

FUNCTION_WORDS = """the of and to a in is was for that with he she it on as at by his her
this be are from or had not but have an they which you were their one all we can has
there been if more when will would who so no out up into do than about time could them
only other its some then two may these after first any also over our new me my your
should because very just what being how well each those now much even through where
most back still same again without before while both since under here during today
please thanks yes ok""".split()

CLINIC_WORDS = """patient doctor nurse appointment consultation prescription dose tablet
tablets morning evening night pain headache fever cough throat chest back knee shoulder
ankle wrist blood pressure test results scan x-ray mri ultrasound referral specialist
follow-up visit clinic pharmacy insurance reimbursement invoice payment card week weeks
day days month months year symptoms symptom allergy allergic reaction rash swelling
dizziness nausea fatigue sleep diet exercise weight heart rate breathing asthma diabetes
insulin glucose cholesterol thyroid vaccine vaccination booster flu covid antibiotic
antibiotics ibuprofen paracetamol amoxicillin metformin lisinopril atorvastatin
omeprazole inhaler cream drops injection physiotherapy session sessions therapy surgery
recovery wound dressing stitches bandage fracture sprain infection inflammation
chronic acute mild moderate severe stable improving worse better normal abnormal
elevated low high history family medical record records report form consent
signature schedule reschedule cancel confirm confirmed reminder waiting room reception
call phone email message portal online video teleconsultation address parking floor
building entrance lab sample urine fasting hours before after meal meals water
medication medications refill renewal pharmacy generic brand side effects effect
monitor monitoring check checkup annual routine urgent emergency ambulance hospital
discharge admission ward bed nurse's doctor's child children baby pregnancy prenatal
pediatric dermatology cardiology neurology orthopedics gynecology ophthalmology dental
teeth tooth eye eyes ear ears skin stomach abdomen bowel kidney liver lungs bone bones
muscle muscles joint joints spine neck head arm leg foot hand finger fingers
temperature degrees mg ml twice daily once three times hourly weekly bedtime""".split()

COMMON_WORDS = """good bad small large little big long short old young early late next last
right left open close closed start started stop stopped feel feeling felt take taking
took give given make made need needed want wanted know think see seen said say ask asked
tell told help helped come came go going went get got keep kept try tried find found work
working home family wife husband son daughter mother father friend office team morning
afternoon monday tuesday wednesday thursday friday saturday sunday january february march
april may june july august september october november december sorry hello hi dear best
regards kind note noted update updated information question questions answer answered
problem problems issue issues fine okay sure maybe probably usually sometimes always never
often already yet almost enough really quite rather pretty bit lot lots thing things way
ways place part case point fact hand eye life world body person people man woman hour
minutes minute moment number group area company system program question government""".split()

FRENCH_WORDS = """le la les de des du un une et est à au aux en dans pour sur avec par
pas plus très bien médecin infirmière rendez-vous ordonnance douleur fièvre tête
gorge dos genou épaule cheville poignet tension artérielle résultats prise de sang
échographie radiographie spécialiste consultation médicament médicaments comprimé
comprimés matin soir nuit allergie éruption gonflement vertiges nausées fatigue sommeil
régime exercice poids cœur respiration asthme diabète insuline glycémie cholestérol
thyroïde vaccin rappel grippe antibiotique kinésithérapie séance séances chirurgie
guérison pansement points fracture entorse infection inflammation chronique aiguë légère
modérée sévère stable amélioration pire mieux normal anormal élevé bas antécédents
dossier compte-rendu formulaire consentement signature annuler confirmer confirmé rappel
salle d'attente accueil appel téléphone courriel messagerie adresse étage bâtiment entrée
laboratoire échantillon urine jeûne heures avant après repas eau renouvellement
pharmacie générique effets secondaires suivi contrôle urgence hôpital sortie enfant bébé
grossesse pédiatrie dermatologie cardiologie neurologie orthopédie gynécologie
ophtalmologie dentaire dents œil yeux oreille peau estomac ventre rein foie poumons os
muscle articulation colonne cou bras jambe pied main doigt température degrés fois
quotidien semaine semaines jour jours mois année merci bonjour bonsoir cordialement
s'il vous plaît désolé déjà encore toujours jamais souvent peut-être vraiment""".split()

GERMAN_WORDS = """der die das und ist nicht mit für auf Schmerzen Fieber Kopf Rücken Knie
Termin Ärztin Arzt Überweisung Blutdruck Müdigkeit Übelkeit Schlaf Gewicht Herz Zucker
Tabletten morgens abends Woche Wochen Tage Größe Grüße""".split()

SPANISH_ITALIAN_WORDS = """el los las del una por para con médico cita dolor fiebre cabeza
espalda rodilla receta farmacia mañana tarde noche gracias señora señor también
il gli della per con medico visita dolore febbre testa schiena ginocchio ricetta
farmacia grazie però perché più già così""".split()

# Other scripts, used by a few messages (multi-byte UTF-8).
FOREIGN_POOLS = {
    "ru": """врач пациент приём запись боль температура голова спина колено давление
анализ крови результаты лекарство таблетки утром вечером ночью аллергия сыпь
усталость сон вес сердце дыхание астма диабет инсулин вакцина грипп спасибо
пожалуйста здравствуйте неделя неделю день дня месяц сегодня завтра вчера хорошо
плохо лучше хуже нормально""".split(),
    "el": """γιατρός ασθενής ραντεβού πόνος πυρετός κεφάλι πλάτη γόνατο πίεση αίμα
αποτελέσματα φάρμακο χάπια πρωί βράδυ νύχτα αλλεργία κούραση ύπνος βάρος καρδιά
ευχαριστώ παρακαλώ καλημέρα εβδομάδα μέρα μήνας σήμερα αύριο καλά""".split(),
    "zh": """医生 病人 预约 疼痛 发烧 头 背 膝盖 血压 验血 结果 药 药片 早上 晚上
过敏 皮疹 疲劳 睡眠 体重 心脏 呼吸 哮喘 糖尿病 胰岛素 疫苗 流感 谢谢 请 你好
星期 天 月 今天 明天 昨天 好 不好 更好""".split(),
    "ar": """طبيب مريض موعد ألم حمى رأس ظهر ركبة ضغط الدم تحليل نتائج دواء أقراص صباحا
مساء ليلا حساسية تعب نوم وزن قلب تنفس ربو سكري أنسولين لقاح شكرا من فضلك مرحبا
أسبوع يوم شهر اليوم غدا أمس جيد""".split(),
}

EMOJI = "🙂 😊 👍 🙏 😷 🤒 💊 ❤️ 😅 😢 ✅ 📅 🏥 👋 🤞".split()

SYLLABLES = """ba be bi bo bu ca ce ci co cu da de di do du fa fe fi fo ga ge go gu
la le li lo lu ma me mi mo mu na ne ni no nu pa pe pi po pu ra re ri ro ru sa se si
so su ta te ti to tu va ve vi vo za zo xa xi tra tri pro pre cla cle stra sto
gen ten min mol vir zol pam tol lex dine mab nib pril sart stat cin cillin""".split()

FIRST_NAMES = """Emma Louise Jade Alice Chloé Lina Léa Rose Anna Mila Inès Julia Ambre Zoé Léna
Mia Agathe Juliette Lou Iris Manon Camille Sarah Eva Nina Clara Margaux Lucie Héloïse
Gabriel Léo Raphaël Arthur Louis Jules Adam Maël Lucas Hugo Noah Liam Gabin Sacha Paul
Nathan Aaron Mohamed Ethan Tom Éden Léon Victor Timéo Noé Martin Théo Axel Marius Nolan
Mathis Yanis Robin Maxime Antoine Baptiste Thomas Nicolas Julien Pierre Jean Marie
Françoise Monique Catherine Nathalie Isabelle Sylvie Christine Sophie Valérie Sandrine
Philippe Michel Alain Patrick Christophe Stéphane Laurent Olivier Éric Frédéric Bernard
Olga Sven Yuki Kenji Mei Chen Priya Aarav Fatima Omar Ayşe Mehmet Giulia Marco Sofia
Diego Lucía Javier Zofia Jakub Anneliese Jürgen Søren Björn Ngọc Dũng Oluwaseun Chiamaka""".split()

LAST_NAMES = """Martin Bernard Thomas Petit Robert Richard Durand Dubois Moreau Laurent Simon
Michel Lefèbvre Leroy Roux David Bertrand Morel Fournier Girard Bonnet Dupont Lambert
Fontaine Rousseau Vincent Muller Lefèvre Faure André Mercier Blanc Guérin Boyer Garnier
Chevalier François Legrand Gauthier Garcia Perrin Robin Clément Morin Nicolas Henry
Roussel Mathieu Gautier Masson Marchand Duval Denis Dumont Marie Lemaire Noël Meyer
Dufour Meunier Brun Blanchard Giraud Joly Rivière Lucas Brunet Gaillard Barbier Arnaud
Martinez Gérard Roche Renard Schmitt Roy Leroux Colin Vidal Caron Picard Roger Fabre
Aubert Lemoine Renaud Dumas Lacroix Olivier Philippe Bourgeois Pierre Benoît Rey Leclerc
Payet Rolland Leclercq Guillaume Lecomte López Jean Dupuy Guillot Hubert Berger
Carpentier Sánchez Dupuis Moulin Louis Deschamps Huet Vasseur Perez Boucher Fleury
Royer Klein Jacquet Adam Paris Poirier Marty Aubry Guyot Carré Charles Renault Charpentier
Ménard Maillard Baron Bertin Bailly Hervé Schneider Fernández Le Gall Collet Léger
Bouvier Julien Prévost Millet Perrot Daniel Le Roux Cousin Germain Breton Besson Langlois
Nguyen Tran Kowalski Nowak Müller Schäfer Rossi Bianchi Öztürk Yılmaz Haddad Benali
Diallo Traoré Okafor Tanaka Suzuki Wang Zhang Kumar Singh Andersson Nielsen""".split()

CITIES = [w.replace("_", " ") for w in """Paris Lyon Marseille Toulouse Nice Nantes Montpellier Strasbourg Bordeaux Lille
Rennes Reims Toulon Saint-Étienne Le_Havre Grenoble Dijon Angers Nîmes Villeurbanne
Clermont-Ferrand Le_Mans Aix-en-Provence Brest Tours Amiens Limoges Annecy Perpignan
Boulogne-Billancourt Metz Besançon Orléans Saint-Denis Argenteuil Rouen Mulhouse Montreuil
Caen Nancy Saint-Paul Tourcoing Roubaix Nanterre Vitry-sur-Seine Avignon Créteil Poitiers
Aubervilliers Versailles Dunkerque Aulnay-sous-Bois Colombes Asnières-sur-Seine Courbevoie
Pau Rueil-Malmaison Béziers La_Rochelle Champigny-sur-Marne Antibes Cannes Calais
Saint-Maur-des-Fossés Mérignac Ajaccio Bourges Drancy Saint-Nazaire Colmar Issy-les-Moulineaux
Évry-Courcouronnes Noisy-le-Grand Quimper Valence Vénissieux Cergy Levallois-Perret""".split()]

STREET_TYPES = "rue avenue boulevard place impasse allée chemin quai cours route".split()
STREET_NAMES = [w.replace("_", " ") for w in """de_la_République Victor_Hugo Jean_Jaurès de_la_Gare
Pasteur du_Général_de_Gaulle des_Écoles de_l'Église Voltaire
Gambetta Jules_Ferry de_la_Mairie du_Moulin Carnot de_la_Paix
des_Lilas du_Stade Émile_Zola des_Tilleuls de_Verdun Foch Clemenceau
de_la_Liberté des_Acacias du_Château Nationale Saint-Michel du_Port
des_Peupliers de_Bretagne Anatole_France Louis_Pasteur Marcel_Pagnol
des_Roses de_Provence du_Lac Montaigne Racine Molière""".split()]

EMAIL_DOMAINS = """gmail.com orange.fr free.fr sfr.fr hotmail.fr yahoo.fr laposte.net outlook.com
wanadoo.fr icloud.com proton.me bbox.fr""".split()

INSURERS = [w.replace("_", " ") for w in """CPAM MGEN Harmonie_Mutuelle Malakoff_Humanis AG2R_La_Mondiale
Groupama Swiss_Life AXA Allianz MAAF Macif Alan Apicil Klesia""".split()]

ALLERGENS = [w.replace("_", " ") for w in """penicillin amoxicillin aspirin ibuprofen sulfonamides codeine latex peanuts
tree_nuts shellfish eggs milk soy wheat pollen dust_mites cat_dander bee_stings
iodine contrast_dye nickel""".split()]

CONDITIONS = [w.replace("_", " ") for w in """hypertension type_2_diabetes type_1_diabetes asthma COPD
hypothyroidism hyperlipidemia migraine depression anxiety osteoarthritis
rheumatoid_arthritis GERD atrial_fibrillation heart_failure obesity
sleep_apnea eczema psoriasis chronic_kidney_disease anemia glaucoma
osteoporosis""".split()]

DRUGS = [w.replace("_", " ") for w in """metformin lisinopril amlodipine atorvastatin levothyroxine omeprazole
salbutamol sertraline escitalopram ramipril bisoprolol simvastatin losartan
metoprolol apixaban furosemide prednisolone allopurinol tamsulosin pantoprazole
insulin_glargine montelukast paracetamol tramadol""".split()]

FREQUENCIES = ["once daily", "twice daily", "three times daily", "at bedtime", "every morning",
               "as needed", "weekly", "every 8 hours", "with meals"]
STATUSES = ["scheduled", "confirmed", "checked-in", "completed", "cancelled", "no-show"]
STATUS_WEIGHTS = [30, 20, 3, 38, 7, 2]
APPT_TYPES = ["consultation", "follow-up", "vaccination", "lab", "physiotherapy",
              "teleconsultation", "annual-checkup", "urgent", "dermatology", "pediatrics"]
ROOMS = [f"{b}{n:02d}" for b in "ABC" for n in range(1, 13)]
BILLING = ["G", "GS", "VG", "APC", "C2", "TCG", "MEG", "NFE", "AMK8", "AMI1", "CCAM-QZJA002"]
NOTE_KINDS = ["progress", "phone", "triage", "admin", "prescription", "lab"]
CHANNELS = ["sms", "email", "push"]
ROLES = ["patient", "patient", "patient", "staff", "staff", "system"]


def _build_vocabulary(seed: int) -> list[str]:
    """Real words by rough frequency (function words first), then made-up
    drug- and jargon-like words as the rare tail."""
    rng = random.Random(f"vocab:{seed}")
    seen: set[str] = set()

    def unique(ws):
        out = []
        for w in ws:
            if w not in seen:
                seen.add(w)
                out.append(w)
        return out

    head = unique(FUNCTION_WORDS)
    real = unique(CLINIC_WORDS + COMMON_WORDS + FRENCH_WORDS + GERMAN_WORDS + SPANISH_ITALIAN_WORDS)
    rng.shuffle(real)
    made_up = []
    while len(made_up) < 2000:
        w = "".join(rng.choice(SYLLABLES) for _ in range(rng.choice((2, 2, 3, 3, 3, 4))))
        if w not in seen:
            seen.add(w)
            made_up.append(w)
    return head + real + made_up


def _zipf_table(words: list[str], size: int = 1 << 16, exponent: float = 1.0) -> list[str]:
    """A table of `size` words where each word appears about in proportion to its
    Zipf weight (at least once): a uniform index into it samples the distribution."""
    weights = [1.0 / (rank + 2.7) ** exponent for rank in range(len(words))]
    total = sum(weights)
    counts = [max(1, int(w / total * size)) for w in weights]
    head = min(60, len(words))
    i = 0
    while sum(counts) > size:  # take the rounding excess from the most frequent words
        if counts[i] > 1:
            counts[i] -= 1
        i = (i + 1) % head
    i = 0
    while sum(counts) < size:
        counts[i] += 1
        i = (i + 1) % head
    table: list[str] = []
    for w, c in zip(words, counts):
        table.extend([w] * c)
    return table


class Text:
    """Sentences of Zipf-distributed words, drawn from a seeded random stream."""

    def __init__(self, rng: random.Random, seed: int):
        self.rng = rng
        self.table = _zipf_table(_build_vocabulary(seed))
        self.foreign = {k: _zipf_table(v, 1 << 12, 0.8) for k, v in FOREIGN_POOLS.items()}

    def words(self, n: int, table=None) -> list[str]:
        t = table or self.table
        mask = len(t) - 1
        if mask == 0xFFFF:
            return [t[i] for i in memoryview(self.rng.randbytes(2 * n)).cast("H")]
        return [t[i & mask] for i in memoryview(self.rng.randbytes(2 * n)).cast("H")]

    def text(self, nbytes: int, emoji: bool = False, lang: str | None = None) -> str:
        """About `nbytes` UTF-8 bytes of sentences."""
        r = self.rng
        if lang is not None:
            table = self.foreign[lang]
            sep = "" if lang == "zh" else " "
            words = self.words(max(2, nbytes // (7 if lang == "zh" else 11)), table)
        else:
            sep = " "
            words = self.words(max(2, nbytes // 6), None)
        out = []
        i, n = 0, len(words)
        while i < n:
            k = r.randint(4, 18)
            s = sep.join(words[i:i + k])
            i += k
            end = "." if r.random() < 0.8 else ("?" if r.random() < 0.6 else "!")
            if lang == "zh":
                end = "。"
            if emoji and r.random() < 0.15:
                end += " " + r.choice(EMOJI)
            out.append(s[:1].upper() + s[1:] + end)
        return " ".join(out)

    def edit(self, text: str) -> str:
        """A small edit: replace, insert or delete a few words."""
        r = self.rng
        parts = text.split(" ")
        for _ in range(r.randint(1, 4)):
            op = r.random()
            j = r.randrange(len(parts))
            if op < 0.5:
                parts[j] = self.words(1)[0]
            elif op < 0.8:
                parts[j:j] = self.words(r.randint(1, 6))
            elif len(parts) > 3:
                del parts[j]
        return " ".join(parts)


# --------------------------------------------------------------------------------------
# ObjectIds and time
# --------------------------------------------------------------------------------------


class OidGen:
    """ObjectIds as drivers make them: seconds, a per-process random value, a counter.
    Several app servers insert, with clocks a little apart, and about 1% of the
    documents get their _id well before they are inserted (offline devices, queued
    jobs), so the insertion order is close to, not exactly, the _id order."""

    LATE = 0.01

    def __init__(self, rng: random.Random, processes: int = 4):
        self.rng = rng
        self.procs = [rng.randbytes(5) for _ in range(processes)]
        self.counters = [rng.randrange(1 << 24) for _ in range(processes)]
        self.skew = [rng.randint(-3, 3) for _ in range(processes)]

    def make(self, ts: int) -> ObjectId:
        r = self.rng
        p = r.randrange(len(self.procs))
        c = self.counters[p]
        self.counters[p] = (c + 1) & 0xFFFFFF
        t = ts + self.skew[p]
        if r.random() < self.LATE:
            t -= int(r.expovariate(1 / 7200))
        return ObjectId(struct.pack(">I", t) + self.procs[p] + c.to_bytes(3, "big"))


def insertion_times(rng: random.Random, n: int, start: int, end: int) -> list[int]:
    """n non-decreasing second timestamps in [start, end], denser in recent times
    (a practice that grows), with jitter."""
    span = end - start
    out = []
    last = start
    for i in range(n):
        t = start + int(span * math.sqrt((i + rng.random()) / n))
        if t < last:
            t = last
        out.append(t)
        last = t
    return out


_ASCII: dict[str, str] = {}


def ascii_lower(name: str) -> str:
    a = _ASCII.get(name)
    if a is None:
        a = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower().replace(" ", "")
        _ASCII[name] = a
    return a


def ms(ts: float) -> DatetimeMS:
    return DatetimeMS(int(ts * 1000))


# --------------------------------------------------------------------------------------
# Documents
# --------------------------------------------------------------------------------------

FEES = [Decimal128(f"{c // 100}.{c % 100:02d}") for c in range(2000, 15001, 50)]
RATES = [Decimal128(s) for s in ("0.60", "0.70", "0.80", "1.00")]


class Clinic:
    def __init__(self, seed: int, stream: str):
        self.seed = seed
        self.rng = random.Random(f"{seed}:{stream}")
        self.text = Text(self.rng, seed)
        self.oids = OidGen(random.Random(f"{seed}:{stream}:oid"))

    # ---- patients ----
    def patient(self, oid: ObjectId, ts: int, mrn: int) -> dict:
        r = self.rng
        first, last = r.choice(FIRST_NAMES), r.choice(LAST_NAMES)
        birth = ts - r.randrange(0, 95 * 365 * 86400)
        email_local = ascii_lower(f"{first}.{last}")
        notes = []
        for _ in range(r.choice((0, 1, 1, 2, 2, 3, 4))):
            notes.append(self.note(ts + r.randrange(0, 3 * 86400)))
        doc = {
            "_id": oid,
            "mrn": f"MRN-{mrn:08d}",
            "firstName": first,
            "lastName": last,
            "birthDate": ms(birth - birth % 86400),
            "sex": r.choice(("F", "M", "F", "M", "X")),
            "email": None if r.random() < 0.1 else f"{email_local}{r.randrange(100)}@{r.choice(EMAIL_DOMAINS)}",
            "phone": f"+33 {r.randrange(6, 8)} {r.randrange(100):02d} {r.randrange(100):02d} {r.randrange(100):02d} {r.randrange(100):02d}",
            "address": {
                "street": f"{r.randrange(1, 200)} {r.choice(STREET_TYPES)} {r.choice(STREET_NAMES)}",
                "city": r.choice(CITIES),
                "postalCode": f"{r.randrange(1000, 96000):05d}",
                "country": "FR",
                "geo": {"type": "Point", "coordinates": [r.uniform(-4.5, 7.5), r.uniform(42.5, 51.0)]},
            },
            "insurance": {
                "provider": r.choice(INSURERS),
                "policyNumber": f"{r.randrange(1, 3)}{r.randrange(10**12, 10**13)}",
                "coverage": r.choice(RATES),
                "validUntil": ms(ts + r.randrange(30, 3 * 365) * 86400),
                "verified": r.random() < 0.8,
            },
            "allergies": [
                {"substance": r.choice(ALLERGENS), "severity": r.choice(("mild", "moderate", "severe")),
                 "notedAt": ms(ts - r.randrange(0, 3650) * 86400)}
                for _ in range(r.choice((0, 0, 0, 1, 1, 2, 3)))
            ],
            "conditions": r.sample(CONDITIONS, r.choice((0, 0, 1, 1, 2, 3))),
            "medications": [
                {"name": r.choice(DRUGS), "doseMg": r.choice((2.5, 5.0, 10.0, 20.0, 40.0, 50.0, 100.0, 250.0, 500.0, 1000.0)),
                 "frequency": r.choice(FREQUENCIES), "since": ms(ts - r.randrange(0, 2000) * 86400),
                 "active": r.random() < 0.85}
                for _ in range(r.choice((0, 0, 1, 1, 2, 3, 4)))
            ],
            "notes": notes,
            "visitCount": r.randrange(0, 40),
            "balanceCents": Int64(r.choice((0, 0, 0, r.randrange(-50000, 200000)))),
            "lastVisit": None if r.random() < 0.2 else ms(ts + r.randrange(0, 86400 * 30)),
            "consent": {"sms": r.random() < 0.7, "email": r.random() < 0.6, "research": r.random() < 0.3,
                        "signedAt": ms(ts)},
            "photoMd5": None if r.random() < 0.6 else Binary(r.randbytes(16), 5),
            "preferredLanguage": r.choice(("fr", "fr", "fr", "fr", "en", "de", "es", "ar", "zh")),
            "tags": r.sample(("vip", "new", "chronic", "pediatric", "senior", "telehealth", "billing-hold", "interpreter"),
                             r.choice((0, 0, 1, 1, 2))),
            "guardian": None if r.random() < 0.85 else {"name": f"{r.choice(FIRST_NAMES)} {last}",
                                                        "relation": r.choice(("mother", "father", "tutor")),
                                                        "phone": f"+33 6 {r.randrange(10**7, 10**8)}"},
            "createdAt": ms(ts),
            "updatedAt": ms(ts + r.randrange(0, 86400)),
            "schemaVersion": 3,
        }
        return doc

    def note(self, t: int) -> dict:
        r = self.rng
        return {"at": ms(t), "author": r.randrange(100, 400), "kind": r.choice(NOTE_KINDS),
                "text": self.text.text(r.randint(120, 900))}

    # ---- appointments ----
    def appointment(self, oid: ObjectId, ts: int, patient: ObjectId) -> dict:
        r, tx = self.rng, self.text
        start = ts + r.randrange(3600, 60 * 86400)
        start -= start % 900
        duration = r.choice((15, 15, 20, 30, 30, 45, 60))
        status = r.choices(STATUSES, STATUS_WEIGHTS)[0]
        fee = r.choice(FEES)
        done = status == "completed"
        doc = {
            "_id": oid,
            "patientId": patient,
            "practitionerId": r.randrange(100, 160),
            "clinicId": r.randrange(1, 9),
            "room": r.choice(ROOMS),
            "type": r.choice(APPT_TYPES),
            "start": ms(start),
            "end": ms(start + duration * 60),
            "durationMin": duration,
            "status": status,
            "reason": tx.text(r.randint(30, 160)),
            "fee": fee,
            "paid": fee if done and r.random() < 0.9 else Decimal128("0.00"),
            "reimbursementRate": r.choice((0.6, 0.7, 0.7, 0.7, 0.8, 1.0)),
            "billingCode": r.choice(BILLING),
            "telehealth": r.random() < 0.15,
            "vitals": None if not done or r.random() < 0.3 else {
                "bpSys": r.randrange(95, 170), "bpDia": r.randrange(55, 105), "pulse": r.randrange(48, 120),
                "tempC": round(r.gauss(36.9, 0.5), 1), "weightKg": round(r.uniform(3.0, 130.0), 1),
                "spo2": r.randrange(90, 101),
            },
            "reminders": [{"channel": r.choice(CHANNELS), "sentAt": ms(start - r.randrange(3600, 3 * 86400))}
                          for _ in range(r.choice((0, 1, 1, 2)))],
            "bookedVia": r.choice(("phone", "web", "app", "desk")),
            "createdAt": ms(ts),
            "updatedAt": ms(ts + r.randrange(0, 7200)),
            "rev": Int64(r.randrange(1, 6)),
        }
        if status == "cancelled":
            doc["cancelReason"] = tx.text(r.randint(20, 120))
        return doc

    # ---- messages ----
    def message(self, oid: ObjectId, ts: int, patient: ObjectId) -> dict:
        r, tx = self.rng, self.text
        # Chat text of 100 B - 4 KB, log-uniform (many short, few long).
        n = int(math.exp(r.uniform(math.log(100), math.log(4000))))
        lang = None
        if r.random() < 0.05:
            lang = r.choice(tuple(FOREIGN_POOLS))
        role = r.choice(ROLES)
        pb = patient.binary
        doc = {
            "_id": oid,
            "conversationId": ObjectId(pb[:4] + b"\xc0" + pb[5:]),
            "patientId": patient,
            "from": {"role": role, "staffId": r.randrange(100, 400) if role == "staff" else None},
            "body": tx.text(n, emoji=role == "patient", lang=lang),
            "lang": lang or "fr",
            "sentAt": ms(ts),
            "readAt": None if r.random() < 0.3 else ms(ts + r.randrange(5, 86400)),
            "status": r.choice(("delivered", "read", "read", "read")),
            "urgent": r.random() < 0.03,
            "attachments": [
                {"name": f"{r.choice(('scan', 'photo', 'report', 'invoice', 'prescription'))}-{r.randrange(10**5)}.{r.choice(('pdf', 'jpg', 'png'))}",
                 "size": Int64(r.randrange(10_000, 8_000_000)), "md5": Binary(r.randbytes(16), 5)}
                for _ in range(1 if r.random() < 0.08 else 0)
            ],
            "deviceId": Binary(r.randbytes(16), 4) if role == "patient" and r.random() < 0.5 else None,
            "seq": r.randrange(1, 500),
        }
        return doc

    # ---- updates ----
    def update(self, coll: str, doc: dict, now: int) -> dict:
        r, tx = self.rng, self.text
        if coll == "patients":
            doc["updatedAt"] = ms(now)
            for _ in range(r.randint(1, 3)):
                k = r.random()
                if k < 0.35:
                    doc["visitCount"] = doc.get("visitCount", 0) + 1
                    doc["lastVisit"] = ms(now)
                elif k < 0.55:
                    doc.setdefault("notes", []).append(self.note(now))
                elif k < 0.7 and doc.get("notes"):
                    note = r.choice(doc["notes"])
                    note["text"] = tx.edit(note["text"])
                elif k < 0.8:
                    doc["phone"] = f"+33 6 {r.randrange(10):02d} {r.randrange(100):02d} {r.randrange(100):02d} {r.randrange(100):02d}"
                elif k < 0.9:
                    doc.setdefault("allergies", []).append(
                        {"substance": r.choice(ALLERGENS), "severity": "mild", "notedAt": ms(now)})
                else:
                    doc["balanceCents"] = Int64(int(doc.get("balanceCents", 0)) + r.randrange(-5000, 15000))
        elif coll == "appointments":
            doc["updatedAt"] = ms(now)
            doc["rev"] = Int64(int(doc.get("rev", 0)) + 1)
            status = doc.get("status")
            nxt = {"scheduled": "confirmed", "confirmed": "checked-in", "checked-in": "completed"}.get(status)
            if nxt is None or r.random() < 0.1:
                nxt = r.choice(("cancelled", "no-show", "completed"))
            doc["status"] = nxt
            if nxt == "completed":
                doc["paid"] = doc.get("fee", Decimal128("25.00"))
                doc["vitals"] = {"bpSys": r.randrange(95, 170), "bpDia": r.randrange(55, 105),
                                 "pulse": r.randrange(48, 120), "tempC": round(r.gauss(36.9, 0.5), 1),
                                 "weightKg": round(r.uniform(3.0, 130.0), 1), "spo2": r.randrange(90, 101)}
            elif nxt == "cancelled":
                doc["cancelReason"] = tx.text(r.randint(20, 120))
            if r.random() < 0.4:
                doc.setdefault("reminders", []).append({"channel": r.choice(CHANNELS), "sentAt": ms(now)})
        else:
            k = r.random()
            if k < 0.6:
                doc["readAt"] = ms(now)
                doc["status"] = "read"
            elif k < 0.85:
                doc["body"] = tx.edit(doc.get("body", ""))
                doc["editedAt"] = ms(now)
            else:
                doc.setdefault("reactions", []).append({"by": r.randrange(100, 400), "emoji": r.choice(EMOJI)})
            if r.random() < 0.1:
                doc["urgent"] = not doc.get("urgent", False)
        return doc


# --------------------------------------------------------------------------------------
# Metadata
# --------------------------------------------------------------------------------------


def _int(v: int) -> dict:
    return {"$numberInt": str(v)}


def metadata(coll: str, rng: random.Random) -> str:
    idx = [{"v": _int(2), "key": {"_id": _int(1)}, "name": "_id_"}]
    if coll == "patients":
        idx += [
            {"v": _int(2), "unique": True, "key": {"mrn": _int(1)}, "name": "mrn_1"},
            {"v": _int(2), "key": {"lastName": _int(1), "firstName": _int(1)}, "name": "lastName_1_firstName_1"},
            {"v": _int(2), "key": {"address.postalCode": _int(1)}, "name": "address.postalCode_1"},
        ]
    elif coll == "appointments":
        idx += [
            {"v": _int(2), "key": {"patientId": _int(1), "start": _int(-1)}, "name": "patientId_1_start_-1"},
            {"v": _int(2), "key": {"status": _int(1), "start": _int(1)}, "name": "status_1_start_1"},
        ]
    else:
        idx += [
            {"v": _int(2), "key": {"conversationId": _int(1), "sentAt": _int(1)}, "name": "conversationId_1_sentAt_1"},
            {"v": _int(2), "key": {"patientId": _int(1)}, "name": "patientId_1"},
        ]
    meta = {"options": {}, "indexes": idx, "uuid": rng.randbytes(16).hex(), "collectionName": coll,
            "type": "collection"}
    return json.dumps(meta, separators=(",", ":"), ensure_ascii=False)


# --------------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------------


def patient_ids(seed: int, n: int) -> tuple[list[ObjectId], list[int]]:
    """The patients' _ids and creation times, computed the same way in every worker."""
    rng = random.Random(f"{seed}:patients:times")
    times = insertion_times(rng, n, EPOCH_START, EPOCH_END)
    gen = OidGen(random.Random(f"{seed}:patients:oid"))
    return [gen.make(t) for t in times], times


def pick_patient(rng: random.Random, pids: list[ObjectId], ptimes: list[int], ts: int) -> ObjectId:
    k = bisect.bisect_right(ptimes, ts)
    if k == 0:
        k = 1
    if rng.random() < 0.5:  # recent patients are the busiest
        return pids[k - 1 - min(k - 1, int(rng.expovariate(1.0) * k * 0.1))]
    return pids[rng.randrange(k)]


class Writer:
    def __init__(self, path: str):
        self.f = open(path, "wb", buffering=0)
        self.buf: list[bytes] = []
        self.pending = 0
        self.bytes = 0
        self.count = 0

    def add(self, b) -> None:
        self.buf.append(b)
        self.pending += len(b)
        if self.pending >= 1 << 22:
            self.flush()

    def flush(self) -> None:
        if self.buf:
            data = b"".join(self.buf)
            self.f.write(data)
            self.bytes += len(data)
            self.buf.clear()
            self.pending = 0

    def close(self) -> None:
        self.flush()
        self.f.close()


def generate_collection(args: tuple) -> dict:
    out, coll, total, seed = args
    target = int(total * SHARE[coll])
    t0 = time.perf_counter()
    c = Clinic(seed, coll)
    d = os.path.join(out, DB)
    with open(os.path.join(d, f"{coll}.metadata.json"), "w", encoding="utf-8") as f:
        f.write(metadata(coll, random.Random(f"{seed}:{coll}:uuid")))
    n_est = max(1, target // MEAN_SIZE[coll])
    times = insertion_times(random.Random(f"{seed}:{coll}:times"), n_est, EPOCH_START, EPOCH_END)
    # Every worker derives the same patient _ids, so references resolve.
    pids, ptimes = patient_ids(seed, max(1, int(total * SHARE["patients"]) // MEAN_SIZE["patients"]))
    w = Writer(os.path.join(d, f"{coll}.bson"))
    encode = bson.encode
    i = 0
    written = 0
    # Patients stop on their count (other workers reference exactly these _ids), the
    # rest on bytes.
    while (i < n_est) if coll == "patients" else (written < target):
        if i < n_est:
            ts = times[i]
        else:  # the estimate was short: keep inserting after the end
            ts = EPOCH_END + (i - n_est)
        if coll == "patients":
            if i < n_est:
                oid = pids[i]
            else:
                oid = c.oids.make(ts)
            doc = c.patient(oid, ts, i + 1)
        elif coll == "appointments":
            doc = c.appointment(c.oids.make(ts), ts, pick_patient(c.rng, pids, ptimes, ts))
        else:
            doc = c.message(c.oids.make(ts), ts, pick_patient(c.rng, pids, ptimes, ts))
        b = encode(doc)
        w.add(b)
        written += len(b)
        i += 1
    w.close()
    return {"collection": coll, "documents": i, "bytes": w.bytes, "seconds": time.perf_counter() - t0}


def generate(out: str, size_mb: float, seed: int, jobs: int) -> list[dict]:
    os.makedirs(os.path.join(out, DB), exist_ok=True)
    total = int(size_mb * 1_000_000)
    tasks = [(out, coll, total, seed) for coll in COLLECTIONS]
    # Largest first so two workers finish together.
    tasks.sort(key=lambda t: -SHARE[t[1]])
    if jobs > 1:
        with multiprocessing.get_context("fork").Pool(min(jobs, len(tasks))) as pool:
            results = pool.map(generate_collection, tasks, chunksize=1)
    else:
        results = [generate_collection(t) for t in tasks]
    order = {c: k for k, c in enumerate(COLLECTIONS)}
    return sorted(results, key=lambda r: order[r["collection"]])


# --------------------------------------------------------------------------------------
# Mutation
# --------------------------------------------------------------------------------------


def scan_bson(data: memoryview) -> list[int]:
    """Offsets of the documents in a .bson file, plus the end offset."""
    offs = []
    pos, end = 0, len(data)
    unpack = struct.Struct("<i").unpack_from
    while pos < end:
        offs.append(pos)
        (n,) = unpack(data, pos)
        if n < 5 or pos + n > end:
            raise ValueError(f"corrupt BSON at offset {pos}")
        pos += n
    offs.append(pos)
    return offs


def doc_id(data: memoryview, off: int, end: int):
    """The _id's sort key: the 12 ObjectId bytes when _id is the first field and an ObjectId."""
    if data[off + 4] == 7 and data[off + 5:off + 9] == b"_id\x00":
        return bytes(data[off + 9:off + 21])
    v = bson.decode(data[off:end])["_id"]
    if isinstance(v, ObjectId):
        return v.binary
    return b"\xff" + bson.encode({"_id": v})  # not an ObjectId: sorts after them


def mutate_collection(args: tuple) -> dict:
    src, out, coll, seed, updates, inserts, deletes, skewed, pids_src, max_ts = args
    t0 = time.perf_counter()
    c = Clinic(seed, f"mutate:{coll}")
    c.oids.LATE = 0.0  # inserts get _ids newer than everything in the source dump
    r = c.rng
    sd, od = os.path.join(src, DB), os.path.join(out, DB)
    meta = os.path.join(sd, f"{coll}.metadata.json")
    if os.path.exists(meta):
        shutil.copyfile(meta, os.path.join(od, f"{coll}.metadata.json"))
    with open(os.path.join(sd, f"{coll}.bson"), "rb") as f:
        data = memoryview(f.read())
    offs = scan_bson(data)
    n = len(offs) - 1
    ids = [doc_id(data, offs[i], offs[i + 1]) for i in range(n)]
    now_lo = max_ts + 60  # the next dump's updates and inserts happen after the last _id

    n_upd = min(n, round(n * updates / 100))
    n_del = min(n - n_upd, round(n * deletes / 100))
    n_ins = round(n * inserts / 100)
    in_newest = None
    if skewed and n_upd:
        by_id = sorted(range(n), key=ids.__getitem__)
        n_new = max(1, n // 10)
        newest, older = by_id[n - n_new:], by_id[:n - n_new]
        hot = min(len(newest), round(n_upd * 0.9))
        chosen = r.sample(newest, hot) + r.sample(older, min(len(older), n_upd - hot))
        newest_set = set(newest)
        in_newest = sum(1 for i in chosen if i in newest_set)
    else:
        chosen = r.sample(range(n), n_upd)
    upd = set(chosen)
    rest = [i for i in range(n) if i not in upd] if n_del else []
    dele = set(r.sample(rest, n_del)) if n_del else set()

    w = Writer(os.path.join(od, f"{coll}.bson"))
    grown = 0
    run_start = 0
    for i in sorted(upd | dele):
        if run_start < offs[i]:
            w.add(data[run_start:offs[i]])
        run_start = offs[i + 1]
        if i in dele:
            continue
        old = data[offs[i]:offs[i + 1]]
        doc = bson.decode(old, DECODE_OPTS)
        now = now_lo + r.randrange(MUTATION_WINDOW)
        nb = bson.encode(c.update(coll, doc, now))
        grown += len(nb) - len(old)
        w.add(nb)
    if run_start < offs[n]:
        w.add(data[run_start:offs[n]])

    # Inserts: newer ObjectIds, appended in insertion order.
    pids = pids_src
    times = sorted(now_lo + r.randrange(MUTATION_WINDOW) for _ in range(n_ins))
    ins_bytes = 0
    for k, ts in enumerate(times):
        if coll == "patients":
            doc = c.patient(c.oids.make(ts), ts, n + k + 1)
        else:
            p = pids[len(pids) - 1 - min(len(pids) - 1, int(r.expovariate(1.0) * len(pids) * 0.1))]
            doc = (c.appointment if coll == "appointments" else c.message)(c.oids.make(ts), ts, p)
        b = bson.encode(doc)
        ins_bytes += len(b)
        w.add(b)
    w.close()
    return {"collection": coll, "documents": n - n_del + n_ins, "source_documents": n, "updated": n_upd,
            "updated_in_newest_10pct": in_newest,
            "inserted": n_ins, "deleted": n_del, "update_growth_bytes": grown, "insert_bytes": ins_bytes,
            "bytes": w.bytes, "seconds": time.perf_counter() - t0}


def read_ids(src: str, coll: str) -> list[bytes]:
    """The ObjectId bytes of a collection's _ids, in file order."""
    path = os.path.join(src, DB, f"{coll}.bson")
    if not os.path.exists(path):
        return []
    with open(path, "rb") as f:
        data = memoryview(f.read())
    offs = scan_bson(data)
    ids = (doc_id(data, offs[i], offs[i + 1]) for i in range(len(offs) - 1))
    return [k for k in ids if len(k) == 12]


def mutate(src: str, out: str, seed: int, updates: float, inserts: float, deletes: float, skewed: bool,
           jobs: int) -> list[dict]:
    if os.path.abspath(src) == os.path.abspath(out):
        raise SystemExit("--out must differ from --mutate-from")
    os.makedirs(os.path.join(out, DB), exist_ok=True)
    colls = sorted(f[:-5] for f in os.listdir(os.path.join(src, DB)) if f.endswith(".bson"))
    max_ts = EPOCH_END
    pids: list[ObjectId] = []
    for coll in colls:
        ids = read_ids(src, coll)
        if ids:
            max_ts = max(max_ts, struct.unpack(">I", max(ids)[:4])[0])
        if coll == "patients":
            pids = [ObjectId(k) for k in ids]
    pids = pids or [ObjectId(b"\x00" * 12)]
    tasks = [(src, out, coll, seed, updates, inserts, deletes, skewed, pids, max_ts) for coll in colls]
    tasks.sort(key=lambda t: -os.path.getsize(os.path.join(src, DB, f"{t[2]}.bson")))
    if jobs > 1:
        with multiprocessing.get_context("fork").Pool(min(jobs, len(tasks))) as pool:
            results = pool.map(mutate_collection, tasks, chunksize=1)
    else:
        results = [mutate_collection(t) for t in tasks]
    return sorted(results, key=lambda r: r["collection"])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--out", required=True, help="dump directory to write (created; files replaced)")
    ap.add_argument("--size-mb", type=float, default=300, help="BSON megabytes (10^6 B) to generate (default 300)")
    ap.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    ap.add_argument("--jobs", type=int, default=min(3, os.cpu_count() or 1),
                    help="worker processes, one collection each (output does not depend on it)")
    ap.add_argument("--mutate-from", metavar="DIR", help="derive the next dump from this one")
    ap.add_argument("--updates", type=float, default=1.0, help="percent of documents updated (default 1.0)")
    ap.add_argument("--inserts", type=float, default=0.5, help="percent of documents inserted (default 0.5)")
    ap.add_argument("--deletes", type=float, default=0.0, help="percent of documents deleted (default 0)")
    ap.add_argument("--skewed", action="store_true", help="90%% of the updates hit the newest 10%% of _ids")
    ap.add_argument("--json", action="store_true", help="print the counts as JSON")
    a = ap.parse_args(argv)

    t0 = time.perf_counter()
    if a.mutate_from:
        res = mutate(a.mutate_from, a.out, a.seed, a.updates, a.inserts, a.deletes, a.skewed, a.jobs)
    else:
        res = generate(a.out, a.size_mb, a.seed, a.jobs)
    secs = time.perf_counter() - t0
    total = sum(x["bytes"] for x in res)
    docs = sum(x["documents"] for x in res)
    if a.json:
        print(json.dumps({"out": a.out, "collections": res, "documents": docs, "bytes": total, "seconds": secs}))
        return 0
    for x in res:
        line = f"{DB}.{x['collection']:<13} {x['documents']:>9} docs {x['bytes'] / 1e6:9.1f} MB"
        if a.mutate_from:
            line += (f"  updated {x['updated']}"
                     + (f" ({x['updated_in_newest_10pct']} in newest 10%)" if x["updated_in_newest_10pct"] is not None else "")
                     + f", inserted {x['inserted']}, deleted {x['deleted']}"
                     + f", update growth {x['update_growth_bytes']:+d} B, insert {x['insert_bytes']} B")
        print(line)
    print(f"total {docs} docs, {total / 1e6:.1f} MB in {secs:.1f} s ({total / 1e6 / secs:.0f} MB/s) -> {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
