"""Each loader: its example file under ontologies/, and malformed input naming file and line."""

import pytest

from entitylink import DataFormatError, EntityLinkError, Ontology
from entitylink._io import read_lines

from .conftest import ONTOLOGIES

SNOMED = ONTOLOGIES / "sct2_Description_Snapshot-en_EXAMPLE_20261123.txt"
SNOMED_HEADER = "id\teffectiveTime\tactive\tmoduleId\tconceptId\tlanguageCode\ttypeId\tterm\tcaseSignificanceId\n"


def write(tmp_path, name, text, mode="w"):
    path = tmp_path / name
    if mode == "wb":
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


# ------------------------------------------------------------------ MEDIC
def test_medic_example():
    onto = Ontology.load(f"medic:{ONTOLOGIES / 'example_medic.txt'}")
    assert onto.n_concepts == 40
    assert "NIDDM" in onto.names_of("D003924")
    # a MeSH id joined with a bare OMIM number: one concept, prefixed OMIM id
    assert onto.names_of("D006973|OMIM:145500") == ["Essential Hypertension", "Primary Hypertension"]


def test_medic_omim_prefix_is_configurable():
    onto = Ontology.load(f"medic:{ONTOLOGIES / 'example_medic.txt'}", omim_prefix="MIM:", mesh_prefix="MESH:")
    assert "MESH:D006973|MIM:145500" in onto.concept_ids


@pytest.mark.parametrize(
    "text, line, message",
    [
        ("D1||Flu\nD2 Cold\n", 2, "found no '||'"),
        ("D1||Flu\nD2|||Cold\n|D3||Cough\n", 3, "empty concept id"),
        ("D1||Flu\n\nD3||  |  \n", 3, "has no name"),
    ],
)
def test_medic_malformed_lines_name_file_and_line(tmp_path, text, line, message):
    path = write(tmp_path, "bad_medic.txt", text)
    with pytest.raises(DataFormatError, match=message) as err:
        Ontology.load(f"medic:{path}")
    assert err.value.line == line and err.value.path == str(path)
    assert f"bad_medic.txt:{line}" in str(err.value)


# ------------------------------------------------------------------ TSV
def test_tsv_example_with_header():
    onto = Ontology.load(f"tsv:{ONTOLOGIES / 'example.tsv'}")
    assert onto.n_concepts == 22 and len(onto) == 40
    assert onto.concepts_of("Heart attack") == ["HP:0001658"]


def test_tsv_accepts_double_bar_lines_and_extra_columns(tmp_path):
    plain = write(tmp_path, "a.tsv", "X:1||Flu\nX:2\tCold\n")
    rows = Ontology.load(f"tsv:{plain}").frame[["concept_id", "name"]].values.tolist()
    assert rows == [["X:1", "Flu"], ["X:2", "Cold"]]
    wide = write(tmp_path, "b.tsv", "concept_id\tname\tsemantic_type\nX:1\tFlu\tDisease\n")
    assert Ontology.load(f"tsv:{wide}").frame["semantic_type"].tolist() == ["Disease"]


def test_tsv_wrong_column_count(tmp_path):
    path = write(tmp_path, "bad.tsv", "X:1\tFlu\nX:2\tCold\textra\n")
    with pytest.raises(DataFormatError, match=r"bad.tsv:2: expected 2 tab-separated fields"):
        Ontology.load(f"tsv:{path}")


def test_tsv_bad_header(tmp_path):
    path = write(tmp_path, "bad.tsv", "concept_id\tlabel\nX:1\tFlu\n")
    with pytest.raises(DataFormatError, match="header columns"):
        Ontology.load(f"tsv:{path}")


# ------------------------------------------------------------------ OBO
def test_obo_example_exact_synonyms_by_default():
    onto = Ontology.load(f"obo:{ONTOLOGIES / 'example.obo'}")
    assert onto.names_of("EX:0000002") == ["Myocardial infarction", "Heart attack", "MI"]
    assert onto.names_of("EX:0000007") == []  # obsolete
    assert onto.names_of("part_of") == []  # Typedef
    assert set(onto.frame["semantic_type"].dropna()) == {"example_phenotype"}
    assert set(onto.frame["source"]) == {"EXAMPLE"}


def test_obo_scopes_and_obsolete_are_choosable():
    onto = Ontology.load(
        f"obo:{ONTOLOGIES / 'example.obo'}", synonym_scopes=["EXACT", "RELATED", "NARROW", "BROAD"],
        include_obsolete=True,
    )
    assert "Heart muscle death" in onto.names_of("EX:0000002")
    assert 'Seizure "like" episode' in onto.names_of("EX:0000005")
    assert onto.names_of("EX:0000007") == ["Obsolete cardiac finding", "Old heart thing"]
    with pytest.raises(ValueError, match="unknown synonym scopes"):
        Ontology.load(f"obo:{ONTOLOGIES / 'example.obo'}", synonym_scopes=["CLOSE"])


def test_obo_roots_keep_a_branch(tmp_path):
    obo = tmp_path / "tree.obo"
    obo.write_text(
        "[Term]\nid: X:1\nname: All\n\n[Term]\nid: X:2\nname: Phenotype\nis_a: X:1 ! All\n\n"
        "[Term]\nid: X:3\nname: Seizure\nis_a: X:2\n\n[Term]\nid: X:4\nname: Focal seizure\nis_a: X:3\n\n"
        "[Term]\nid: X:5\nname: Recurrent\nis_a: X:1\n"
    )
    kept = Ontology.load(f"obo:{obo}", roots=["X:2"])
    assert sorted(kept.frame["concept_id"]) == ["X:2", "X:3", "X:4"]  # the root, a child, a grandchild
    assert len(Ontology.load(f"obo:{obo}")) == 5
    with pytest.raises(ValueError, match="X:9"):
        Ontology.load(f"obo:{obo}", roots=["X:9"])


@pytest.mark.parametrize(
    "body, line, message",
    [
        ("[Term]\nid: X:1\nname: a\nthis line has no colon\n", 4, "expected 'tag: value'"),
        ("[Term]\nid: X:1\nname: a\n\n[Term]\nname: b\n", 5, "no 'id:' line"),
        ("[Term]\nid: X:1\nsynonym: unquoted EXACT []\n", 3, "expected synonym"),
        ("[Term\nid: X:1\n", 1, "malformed stanza header"),
    ],
)
def test_obo_broken_stanzas(tmp_path, body, line, message):
    path = write(tmp_path, "broken.obo", body)
    with pytest.raises(DataFormatError, match=message) as err:
        Ontology.load(f"obo:{path}")
    assert err.value.line == line


def test_embedded_hpo():
    hpo = Ontology.load("hpo")
    assert hpo.n_concepts > 15000 and len(hpo) > 35000
    assert "Hepatomegaly" in hpo.names_of("HP:0002240")


# ------------------------------------------------------------------ UMLS
def test_umls_filters_language_and_suppressed_rows():
    onto = Ontology.load(f"umls:{ONTOLOGIES / 'MRCONSO.RRF'}")
    names = onto.names_of("C0027051")
    assert "Infarctus du myocarde" not in names  # FRE
    assert "Infarction, Myocardial" not in names  # SUPPRESS=O
    assert "Diabetes, Maturity-Onset" not in onto.names_of("C0011860")  # SUPPRESS=Y
    assert {"Myocardial Infarction", "Heart Attack", "heart attack"} <= set(names)


def test_umls_sources_languages_and_semantic_types():
    onto = Ontology.load(
        f"umls:{ONTOLOGIES / 'MRCONSO.RRF'}", sources=["MSH"], languages=None, drop_suppressed=False,
        semantic_types=ONTOLOGIES / "MRSTY.RRF",
    )
    assert set(onto.frame["source"]) == {"MSH"}
    assert {"Infarction, Myocardial", "Diabetes, Maturity-Onset"} <= set(onto.names)
    assert onto.frame.set_index("concept_id").loc["C0036572", "semantic_type"].iloc[0] == "Sign or Symptom"


def test_umls_truncated_line(tmp_path):
    good = (ONTOLOGIES / "MRCONSO.RRF").read_text().splitlines()
    path = write(tmp_path, "MRCONSO.RRF", "\n".join(good[:3] + [good[3][:40]]) + "\n")
    with pytest.raises(DataFormatError, match=r"MRCONSO.RRF:4: expected 18 '\|'-separated MRCONSO fields"):
        Ontology.load(f"umls:{path}")


def test_umls_streams_lines(tmp_path, monkeypatch):
    """The reader is a generator over lines: it never reads the file whole."""
    from entitylink.ontology import umls as loaders

    calls = []
    real = loaders.read_lines

    def spy(path):
        for item in real(path):
            calls.append(item[0])
            yield item

    monkeypatch.setattr(loaders, "read_lines", spy)
    rows = loaders.read_umls(ONTOLOGIES / "MRCONSO.RRF")
    first = next(rows)
    assert first[0] == "C0027051" and calls == [1]


# ------------------------------------------------------------------ SNOMED
def test_snomed_example_active_rows_and_semantic_tags():
    onto = Ontology.load(f"snomed:{SNOMED}")
    names = onto.names_of("22298006")
    assert names[0] == "Myocardial infarction"
    assert "Infarction of heart - retired" not in names  # inactive
    assert "infarto de miocardio" not in names  # language filter
    assert "Low platelet count" not in onto.names_of("302215000")  # later inactivated
    assert set(onto.frame.loc[onto.frame.concept_id == "91175000", "semantic_type"]) == {"finding"}


def test_snomed_keeps_tags_when_asked():
    onto = Ontology.load(f"snomed:{SNOMED}", strip_semantic_tag=False, languages=None)
    assert "Myocardial infarction (disorder)" in onto.names_of("22298006")
    assert "infarto de miocardio" in onto.names_of("22298006")


def test_snomed_header_only_and_bad_header(tmp_path):
    header_only = write(tmp_path, "sct2_Description_Snapshot-en_X.txt", SNOMED_HEADER)
    with pytest.raises(EntityLinkError, match="no names were read"):
        Ontology.load(f"snomed:{header_only}")
    bad = write(tmp_path, "sct2_bad.txt", "id\tterm\n1\tx\n")
    with pytest.raises(DataFormatError, match=r"sct2_bad.txt:1: expected the RF2 description header"):
        Ontology.load(f"snomed:{bad}")
    short = write(tmp_path, "sct2_short.txt", SNOMED_HEADER + "1\t2002\t1\n")
    with pytest.raises(DataFormatError, match=r"sct2_short.txt:2: expected 9 tab-separated fields"):
        Ontology.load(f"snomed:{short}")


# ------------------------------------------------------------------ encodings and specs
def test_bom_and_crlf_are_accepted(tmp_path):
    path = write(tmp_path, "bom.txt", "\ufeffD1||Flu|Grippe\r\nD2||Cold\r\n".encode(), mode="wb")
    assert Ontology.load(f"medic:{path}").frame[["concept_id", "name"]].values.tolist() == [
        ["D1", "Flu"], ["D1", "Grippe"], ["D2", "Cold"],
    ]


def test_non_utf8_bytes_name_the_line(tmp_path):
    path = write(tmp_path, "latin1.txt", "D1||Flu\nD2||Sj\xf6gren\n".encode("latin-1"), mode="wb")
    with pytest.raises(DataFormatError, match=r"latin1.txt:2: not valid UTF-8"):
        list(read_lines(path))


def test_empty_file_is_a_clear_error(tmp_path):
    path = write(tmp_path, "empty.txt", "")
    with pytest.raises(EntityLinkError, match="no names were read"):
        Ontology.load(f"medic:{path}")


def test_spec_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown ontology kind 'mesh'"):
        Ontology.load("mesh:/data/x.txt")
    with pytest.raises(ValueError, match="cannot tell the format"):
        Ontology.load(str(tmp_path / "names.txt"))
    with pytest.raises(FileNotFoundError, match="no such file"):
        Ontology.load(f"medic:{tmp_path / 'missing.txt'}")
    with pytest.raises(ValueError, match="has no option"):
        Ontology.load(f"medic:{ONTOLOGIES / 'example_medic.txt'}", synonym_scopes=["EXACT"])
    with pytest.raises(ValueError, match="needs a path"):
        Ontology.load("medic:")


def test_kind_is_inferred_from_file_name():
    assert Ontology.load(str(ONTOLOGIES / "example.obo")).n_concepts == 7
    assert Ontology.load(str(SNOMED)).n_concepts == 8
