"""The EQA agent (`agent.EQAAgent`), its method config, stop policies and episode records; the one episode
loop and the built-in simulator driver; benchmark runner, metrics and reports; the `eqa` CLI; question-set
loaders (HM-EQA, OpenEQA)."""
