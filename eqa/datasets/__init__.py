"""Question sets: HM-EQA and OpenEQA loaders, and the built-in procedural sets (`sim.questions`)."""
from eqa.datasets.hmeqa import HmEqaDataset, HmEqaQuestion, HmEqaStart, load_hmeqa
from eqa.datasets.openeqa import OpenEqaDataset, OpenEqaQuestion, load_openeqa
from sim.questions import Question, load_jsonl as load_procedural

__all__ = ["HmEqaDataset", "HmEqaQuestion", "HmEqaStart", "load_hmeqa", "OpenEqaDataset", "OpenEqaQuestion",
           "load_openeqa", "Question", "load_procedural"]
