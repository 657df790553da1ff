"""What each ``kraken`` command does, as one engine call: ``XConfig`` -> ``x(config, progress)`` -> ``XResult``.

The CLI module of a command (``kraken_cli/cli/<command>.py``) parses options into the config, calls
the one function below, and renders the result (``result.to_dict()`` is its ``--json``).
The configs of ``run`` and ``adapt`` are in :mod:`.configs`, which imports no torch, so the CLI can show
their defaults in ``--help``.

=================  ===================================================================================
command            pipeline
=================  ===================================================================================
``run``            :func:`.predict.predict` (``PredictConfig`` -> ``PredictResult``); ``--evaluate``
                   outputs in :mod:`.evaluation`
``adapt``          :func:`.adapt.fit_adapter` (``AdaptConfig`` -> ``AdaptResult``)
``train``          :func:`kraken_cli.engine.training.session.train_from_inputs` (``TrainConfig`` ->
                   ``TrainResult``)
``connectivity``   :func:`kraken_cli.engine.connectivity.run_connectivity` (``ConnectivityConfig`` ->
                   ``ConnectivityResult``)
``merge``          :func:`kraken_cli.engine.merge.merge_to_file` (-> ``MergeResult``)
``describe``       :func:`kraken_cli.engine.describe.describe_checkpoint`
``fetch``          :func:`kraken_cli.engine.registry.fetch` (``--verify``: ``verify_cached``)
``example``        :func:`kraken_cli.engine.example.run_example`
=================  ===================================================================================
"""
