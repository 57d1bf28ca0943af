import BSON
import Testing
@testable import Recovery

struct NamespaceMappingTests {
    @Test func filtersAndRenames() throws {
        let m = try NamespaceMapping(include: ["clinic.*", "other.keep"], exclude: ["clinic.tmp*"],
                                     renames: [(from: "clinic.*", to: "drill_clinic.*")])
        #expect(m.map(Namespace("clinic.patients")!) == Namespace("drill_clinic.patients"))
        #expect(m.map(Namespace("clinic.tmp12")!) == nil)
        #expect(m.map(Namespace("other.keep")!) == Namespace("other.keep"))
        #expect(m.map(Namespace("other.drop")!) == nil)
        #expect(m.mapDatabase("clinic") == "drill_clinic")
        #expect(m.mapDatabase("other") == nil)
        let swap = try NamespaceMapping(renames: [(from: "a.*_old", to: "b.new_*")])
        #expect(swap.map(Namespace("a.x_old")!) == Namespace("b.new_x"))
        #expect(swap.map(Namespace("a.y")!) == Namespace("a.y"))
        #expect(throws: RestoreError.self) { try NamespaceMapping(renames: [(from: "a.*", to: "b.c")]) }
        #expect(throws: RestoreError.self) { try NamespaceMapping(include: ["nodot"]) }
    }
}
