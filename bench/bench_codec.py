"""Encode/decode rate of an InferenceEvent with 30 features on one core, next to orjson.

Rows, each the median of several timed rounds over the same batch of distinct records:
fastavro's per-record reader and writer, Driftline's codec (single-object framing +
specialised decoder + value checks, i.e. what a processor pays per record), and orjson
on the same records as JSON, and the columnar batch decoder (framed values of one
``consume`` call -> numpy columns, no dict per record) at two batch sizes. Ratios are
against fastavro's reader and against orjson.loads, both measured in this run.
"""

from __future__ import annotations

import io
import statistics
import time
from collections.abc import Callable

import orjson
from fastavro import schemaless_reader, schemaless_writer

from schemas.catalog import load_catalog
from schemas.codec import SingleObjectCodec
from schemas.inference_batch import decode_inference_batch
from schemas.inference_decoder import decode_inference_event
from tests.records_factory import inference_event

RECORDS = 20_000
ROUNDS = 5
#: ``consume_decoded``'s default batch, and a small one (a quiet topic).
BATCH_SIZES = (500, 100)


def _rate(action: Callable[[], None]) -> float:
    rates = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        action()
        rates.append(RECORDS / (time.perf_counter() - started))
    return statistics.median(rates)


def main() -> None:
    codec = SingleObjectCodec()
    schema = load_catalog().current("InferenceEvent").parsed
    records = [inference_event(i, model=f"model-{i % 4}") for i in range(RECORDS)]
    framed = [codec.encode("InferenceEvent", r) for r in records]
    bodies = [f[10:] for f in framed]
    jsons = [orjson.dumps(r) for r in records]

    def fastavro_write() -> None:
        for r in records:
            schemaless_writer(io.BytesIO(), schema, r)

    def fastavro_read() -> None:
        for b in bodies:
            schemaless_reader(io.BytesIO(b), schema, None)

    def specialised_read() -> None:
        for b in bodies:
            decode_inference_event(b)

    def codec_decode() -> None:
        decode = codec.decode
        for f in framed:
            decode(f)

    def batch_decoder(size: int) -> Callable[[], None]:
        batches = [framed[i : i + size] for i in range(0, len(framed), size)]

        def decode() -> None:
            for batch in batches:
                decode_inference_batch(batch)

        return decode

    def codec_encode() -> None:
        encode = codec.encode
        for r in records:
            encode("InferenceEvent", r)

    def orjson_loads() -> None:
        for j in jsons:
            orjson.loads(j)

    def orjson_dumps() -> None:
        for r in records:
            orjson.dumps(r)

    rows = [
        ("fastavro schemaless_reader (per record)", fastavro_read, len(bodies[0])),
        ("specialised InferenceEvent decoder", specialised_read, len(bodies[0])),
        ("codec.decode (framing + decoder + NaN checks)", codec_decode, len(framed[0])),
        *(
            (f"decode_inference_batch (columns, batch {n})", batch_decoder(n), len(framed[0]))
            for n in BATCH_SIZES
        ),
        ("orjson.loads (same record as JSON)", orjson_loads, len(jsons[0])),
        ("fastavro schemaless_writer", fastavro_write, len(bodies[0])),
        ("codec.encode (validation + writer + header)", codec_encode, len(framed[0])),
        ("orjson.dumps", orjson_dumps, len(jsons[0])),
    ]
    decode_batch_once = batch_decoder(BATCH_SIZES[0])
    decode_batch_once()  # learn the feature layouts, as a running processor has
    base = _rate(fastavro_read)
    json_base = _rate(orjson_loads)
    print(f"InferenceEvent, 30 features, {RECORDS} records x {ROUNDS} rounds, medians, 1 core")
    header = f"{'operation':<48} {'records/s':>10} {'vs fastavro read':>17}"
    print(f"{header} {'vs orjson.loads':>16} {'bytes':>6}")
    for name, action, size in rows:
        rate = (
            base
            if action is fastavro_read
            else json_base
            if action is orjson_loads
            else _rate(action)
        )
        print(
            f"{name:<48} {rate:>10,.0f} {rate / base:>16.2f}x {rate / json_base:>15.2f}x {size:>6}"
        )


if __name__ == "__main__":
    main()
