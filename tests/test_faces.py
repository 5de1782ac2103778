"""One linking policy: the same mention gets the same candidates from Python, the CLI, spaCy and HTTP."""

import json

import pytest

spacy = pytest.importorskip("spacy")
pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from entitylink import DictionaryIndex, Linker, LinkingPolicy, Ontology  # noqa: E402
from entitylink.apps.cli import main  # noqa: E402
from entitylink.apps.serve import ServiceSettings, create_app  # noqa: E402

ONTOLOGY = Ontology.from_pairs([
    ("D013167", "Ankylosing spondylitis"), ("D013167", "Bechterew disease"),
    ("D009203", "Heart attack"), ("D009203", "Myocardial infarction"),
    ("D006973", "High blood pressure"), ("D006973", "Hypertension"),
    ("D012640", "Seizures"), ("D012640", "Fits"), ("D001172", "Rheumatoid arthritis"),
    ("D003924", "Type 2 diabetes"), ("D009369", "Cancer"),
])
TEXT = "Ankylosing spondylitis (AS) is chronic. Of 120 patients with AS, 14 had a heart attack."
MENTIONS = ["heart attack", "AS"]


@pytest.fixture
def saved(tiny_encoder, tmp_path):
    """An index saved with a policy whose threshold cuts some candidates (so the threshold is exercised)."""
    probe = Linker(DictionaryIndex.build(ONTOLOGY, tiny_encoder), k=4)
    scores = sorted(c.score for c in probe.link("heart attack"))
    policy = LinkingPolicy(k=4, threshold=(scores[0] + scores[1]) / 2)
    Linker(probe.index, policy).save(tmp_path / "index")
    return tmp_path / "index", policy


def pairs(candidates):
    return [(c["concept_id"], round(c["score"], 5)) for c in candidates]


def test_the_same_answer_through_every_face(saved, tmp_path, capsys):
    path, policy = saved
    linker = Linker.load(path, precision="fp32")
    assert linker.policy == policy  # saved with the index, read back
    python = {m: [(c.concept_id, round(c.score, 5)) for c in cands]
              for m, cands in zip(MENTIONS, linker.link(MENTIONS, contexts=TEXT))}
    assert len(python["heart attack"]) == 3  # the threshold dropped one of the k=4
    assert python["AS"][0][0] == "D013167"  # "AS" linked as its long form, defined in the text

    (tmp_path / "mentions.txt").write_text("heart attack\n")
    assert main(["link", "--index", str(path), "--input", str(tmp_path / "mentions.txt"),
                 "--format", "jsonl", "--precision", "fp32"]) == 0
    cli = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert pairs(cli["candidates"]) == python["heart attack"]

    nlp = spacy.blank("en")
    nlp.add_pipe("entity_ruler").add_patterns([{"label": "DISEASE", "pattern": p} for p in ("heart attack", "AS")])
    nlp.add_pipe("entitylink", config={"index": str(path), "precision": "fp32"})
    doc = nlp(TEXT)
    from_spacy = {}
    for ent in doc.ents:
        from_spacy.setdefault(ent.text, [(cid, round(score, 5)) for cid, score in ent._.kb_ents])
    assert from_spacy == python

    ruler = spacy.blank("en")
    ruler.add_pipe("entity_ruler").add_patterns([{"label": "DISEASE", "pattern": p} for p in ("heart attack", "AS")])
    with TestClient(create_app(linker, ruler, ServiceSettings())) as client:
        link = client.post("/link", json={"mentions": ["heart attack"]}).json()["results"][0]
        assert pairs(link["candidates"]) == python["heart attack"]
        entities = client.post("/annotate", json={"text": TEXT}).json()["entities"]
    from_http = {}
    for entity in entities:
        from_http.setdefault(entity["text"], pairs(entity["candidates"]))
        assert entity["kb_id"] == (entity["candidates"][0]["concept_id"] if entity["candidates"] else None)
    assert from_http == python
    names = {c["concept_id"]: c["name"] for c in link["candidates"]}
    annotated = {c["concept_id"]: c["name"] for e in entities if e["text"] == "heart attack" for c in e["candidates"]}
    assert names == annotated  # both report the dictionary name that matched best


def test_a_face_may_override_the_saved_policy(saved, tmp_path, capsys):
    path, policy = saved
    (tmp_path / "mentions.txt").write_text("heart attack\n")
    assert main(["link", "--index", str(path), "--input", str(tmp_path / "mentions.txt"), "--format", "jsonl",
                 "--precision", "fp32", "--threshold", "-1", "--k", "2"]) == 0
    cli = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert len(cli["candidates"]) == 2
    linker = Linker.load(path, precision="fp32")
    with TestClient(create_app(linker, None, ServiceSettings(max_k=4))) as client:
        assert len(client.post("/link", json={"mentions": ["heart attack"], "k": 1}).json()["results"][0]
                   ["candidates"]) == 1
        assert client.post("/link", json={"mentions": ["heart attack"], "k": 5}).status_code == 422
    assert Linker.load(path, precision="fp32").policy == policy  # overrides are per call: nothing was saved


def test_index_command_saves_the_policy_and_info_shows_it(tiny_model, tmp_path, capsys):
    from entitylink.link.policy import ANNOTATION_DEFAULTS

    from .conftest import ONTOLOGIES

    out = tmp_path / "idx"
    assert main(["index", "--ontology", f"medic:{ONTOLOGIES / 'example_medic.txt'}", "--out", str(out),
                 "--model", str(tiny_model), "--precision", "fp32", "--k", "7", "--threshold", "0.3",
                 "--abbreviations", "off"]) == 0
    # the annotation settings chosen on NCBI-disease dev for diseases come with MEDIC's entity type
    assert LinkingPolicy.read(out) == LinkingPolicy(k=7, threshold=0.3, abbreviations="off", entity_type="Disease",
                                                    **ANNOTATION_DEFAULTS["Disease"])
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    assert '"k": 7' in capsys.readouterr().out


def test_bad_policy_files_name_the_file(tmp_path):
    from entitylink import DataFormatError

    (tmp_path / "policy.json").write_text('{"k": 0}')
    with pytest.raises(DataFormatError, match=r"policy.json: k must be an integer"):
        LinkingPolicy.read(tmp_path)
    (tmp_path / "policy.json").write_text('{"k": 3, "beam": 2}')
    with pytest.raises(DataFormatError, match=r"unknown linking settings \['beam'\]"):
        LinkingPolicy.read(tmp_path)
    (tmp_path / "policy.json").write_text('{"k": 3,')
    with pytest.raises(DataFormatError, match=r"policy.json:1: invalid JSON"):
        LinkingPolicy.read(tmp_path)
