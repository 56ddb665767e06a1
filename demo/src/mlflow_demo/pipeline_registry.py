from kedro.pipeline import Pipeline, node, pipeline

from .nodes import evaluate, make_data, train


def register_pipelines() -> dict[str, Pipeline]:
    training = pipeline(
        [
            node(make_data, "params:data", "dataset", name="make_data"),
            node(train, ["dataset", "params:model"], "classifier", name="train"),
            node(evaluate, ["classifier", "dataset"], "metrics", name="evaluate"),
        ]
    )
    return {"__default__": training, "training": training}
