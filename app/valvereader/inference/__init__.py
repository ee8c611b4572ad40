"""From a radiograph to a Prediction: the predictor and the batch command.

- ``predictor``: :class:`Predictor` and :func:`load_predictor` (locate, identify, explain, give a verdict);
- ``cards``: what the model cards set for inference (calibration, preprocessing);
- ``views``: the regions read (located square, whole image) and the rule that chooses between them;
- ``verdict``: the open-set score of a view and the verdict;
- ``streams``: many files at once (``predict_many``: prefetch, parallel streams);
- ``locating``: the locator's output decoded, the film verification;
- ``open_set``: the open-set scorer;
- ``classify``: ``valvereader classify``, the batch CSV command.

Nothing here imports torch or Qt; the submodules are imported where needed (nothing is
imported by this package itself, so the command line starts fast).
"""
