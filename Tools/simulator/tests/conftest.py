"""Fixtures: start simulators as subprocesses on free ports."""
import os
import subprocess
import sys

import pytest
import pymongo

HERE = os.path.dirname(os.path.abspath(__file__))
SIM_DIR = os.path.dirname(HERE)
sys.path.insert(0, SIM_DIR)
REPO = os.path.dirname(os.path.dirname(SIM_DIR))
FIXTURES = os.path.join(REPO, "..", "shared", "fixtures", "mongo-tools")


class Sim:
    def __init__(self, *args):
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(SIM_DIR, "simulator.py"), "--host", "127.0.0.1",
             "--port", "0", *args], stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        assert line.startswith("listening on "), line
        self.addr = line.split()[-1]
        self.port = int(self.addr.rsplit(":", 1)[1])
        self.standalone = "--standalone" in args
        self.clients = []

    def uri(self, direct=False):
        if direct or self.standalone:
            return "mongodb://%s/?directConnection=true" % self.addr
        return "mongodb://%s/?replicaSet=rs0" % self.addr

    def client(self, direct=False, **kw):
        kw.setdefault("serverSelectionTimeoutMS", 5000)
        c = pymongo.MongoClient(self.uri(direct), **kw)
        self.clients.append(c)
        return c

    def stop(self):
        for c in self.clients:
            c.close()
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture
def make_sim():
    sims = []

    def make(*args):
        s = Sim(*args)
        sims.append(s)
        return s
    yield make
    for s in sims:
        s.stop()


@pytest.fixture
def sim(make_sim):
    return make_sim()


@pytest.fixture
def client(sim):
    return sim.client()


def fixtures_dir():
    if not os.path.isdir(FIXTURES):
        pytest.skip("real MongoDB fixtures not found at %s (../shared/fixtures/mongo-tools)" % FIXTURES)
    return FIXTURES
