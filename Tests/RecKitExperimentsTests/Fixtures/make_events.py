"""Writes events.golden: three TensorBoard events framed by TensorBoard's own RecordWriter (independent of RecKit).
Run: .venv-tools/bin/python Tests/RecKitExperimentsTests/Fixtures/make_events.py  (tensorboard from PyPI)."""
import os, sys
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.record_writer import RecordWriter
import tensorboard

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "events.golden")
with open(out, "wb") as f:
    w = RecordWriter(f)
    w.write(event_pb2.Event(wall_time=1700000000.5, step=0, file_version="brain.Event:2").SerializeToString())
    s = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag="train/loss", simple_value=0.4375),
                                   summary_pb2.Summary.Value(tag="train/learning_rate", simple_value=0.001)])
    w.write(event_pb2.Event(wall_time=1700000001.25, step=7, summary=s).SerializeToString())
    s = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag="validation/auc", simple_value=0.8125)])
    w.write(event_pb2.Event(wall_time=1700000002.0, step=300, summary=s).SerializeToString())
print(f"wrote {out} with tensorboard {tensorboard.__version__}", file=sys.stderr)
