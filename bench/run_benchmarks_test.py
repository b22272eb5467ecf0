#!/usr/bin/python3
"""Checks bench/run_benchmarks.py's own logic on synthetic data: percentiles, per-round
figures, medians over rounds, the ORT floor correction, ratios, the RSS baseline
subtraction, input shapes for batched and graph models, and the docs block replacement.
No engine is run and no timing is asserted. Ends with 'N passed, M failed'."""

import math
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run_benchmarks as rb  # noqa: E402


def cfg(model="m", batch=1, threads=1, rounds=None, rss=None):
    return {"model": model, "batch": batch, "threads": threads, "rounds": rounds or {}, "rss_kib": rss or {},
            "errors": {}}


def peer_round(p50, n=10, total_s=None, batch=1):
    lat = [p50] * n
    return rb.round_from_latencies(lat, total_s if total_s is not None else n * p50 / 1e6, batch)


class Statistics(unittest.TestCase):
    def test_percentile_matches_hepml_interpolation(self):
        self.assertEqual(rb.percentile([3, 1, 2], 50), 2)
        self.assertEqual(rb.percentile([1, 2, 3, 4], 50), 2.5)
        self.assertAlmostEqual(rb.percentile([10, 20, 30, 40, 50], 90), 46.0)
        self.assertEqual(rb.percentile([7], 99), 7)
        self.assertTrue(math.isinf(rb.percentile([1, math.inf, math.inf], 50)))
        with self.assertRaises(ValueError):
            rb.percentile([], 50)

    def test_median_ignores_one_outlier_round(self):
        self.assertEqual(rb.median([100, 101, 99, 5000, 100]), 100)

    def test_round_from_latencies(self):
        r = rb.round_from_latencies([100.0, 300.0, 200.0, 400.0], 0.002, batch=256)
        self.assertEqual(r["p50_us"], 250.0)
        self.assertEqual(r["mean_us"], 250.0)
        self.assertAlmostEqual(r["throughput_per_s"], 256 * 4 / 0.002)
        self.assertEqual(r["iterations"], 4)
        with self.assertRaises(ValueError):
            rb.round_from_latencies([], 1.0, 1)

    def test_round_from_hepml_json(self):
        j = {"model": "m.onnx", "batch": 256, "threads": 1, "iterations": 50, "load_ms": 3.0,
             "latency_us": {"p50": 1000.0, "p90": 1100.0, "p99": 1200.0, "mean": 1020.0},
             "throughput_per_s": 250000.0, "peak_rss_mib": 20.0}
        r = rb.round_from_hepml(j)
        self.assertEqual(r["p50_us"], 1000.0)
        self.assertEqual(r["throughput_per_s"], 250000.0)
        self.assertAlmostEqual(r["total_s"], 256 * 50 / 250000.0)

    def test_floor_correction(self):
        r = peer_round(50.0, n=100, batch=1)          # 100 calls of 50 us: 5 ms
        c = rb.floor_corrected(r, 20.0, 1)
        self.assertAlmostEqual(c["p50_us"], 30.0)
        self.assertAlmostEqual(c["throughput_per_s"], 100 / 0.003)
        # A floor as large as the whole call leaves nothing to compare: None, not a crash.
        self.assertEqual(rb.floor_corrected(r, 50.0, 1), {"p50_us": None, "throughput_per_s": None})
        self.assertIsNone(rb.floor_corrected(r, 60.0, 1)["p50_us"])

    def test_aggregate_spread(self):
        m, spread = rb.aggregate([{"x": 90}, {"x": 100}, {"x": 110}], "x")
        self.assertEqual(m, 100)
        self.assertAlmostEqual(spread, 0.10)

    def test_iterations_for(self):
        self.assertEqual(rb.iterations_for(1000, 0.25), 250)
        self.assertEqual(rb.iterations_for(1e6, 0.25), 3)           # at least 3
        self.assertEqual(rb.iterations_for(0.01, 0.25), 5000)       # at most 5000

    def test_rotation_puts_every_engine_first(self):
        firsts = {rb.rotated(rb.ENGINES, r)[0] for r in range(3)}
        self.assertEqual(firsts, set(rb.ENGINES))
        self.assertEqual(sorted(rb.rotated(rb.ENGINES, 7)), sorted(rb.ENGINES))


class Rss(unittest.TestCase):
    def test_baseline_subtraction_uses_medians(self):
        # runs 120, 121, 500 MiB (one outlier), baselines 20, 21, 19 MiB
        run = [120 * 1024, 121 * 1024, 500 * 1024]
        base = [20 * 1024, 21 * 1024, 19 * 1024]
        self.assertAlmostEqual(rb.rss_added_mib(run, base), 101.0)

    def test_missing_data_gives_none(self):
        self.assertIsNone(rb.rss_added_mib([], [1024]))
        self.assertIsNone(rb.rss_added_mib([1024], []))

    def test_may_be_slightly_negative(self):
        self.assertAlmostEqual(rb.rss_added_mib([1000], [1024]), -24 / 1024)


class Summaries(unittest.TestCase):
    def make(self):
        rounds = {
            "hepml": [{"p50_us": 80.0, "mean_us": 80.0, "throughput_per_s": 12000.0, "iterations": 100, "total_s": 0.008},
                      {"p50_us": 90.0, "mean_us": 90.0, "throughput_per_s": 11000.0, "iterations": 100, "total_s": 0.009},
                      {"p50_us": 70.0, "mean_us": 70.0, "throughput_per_s": 13000.0, "iterations": 100, "total_s": 0.007}],
            "onnxruntime": [peer_round(120.0, n=100), peer_round(130.0, n=100), peer_round(110.0, n=100)],
            "pytorch": [peer_round(400.0, n=100)] * 3,
        }
        rss = {"hepml": [30 * 1024] * 3, "onnxruntime": [100 * 1024] * 3, "pytorch": [300 * 1024] * 3}
        return cfg(rounds=rounds, rss=rss)

    def test_row_figures_and_ratios(self):
        row = rb.summarize_config(self.make(), 20.0,
                                  {"hepml": [10 * 1024], "onnxruntime": [60 * 1024], "pytorch": [250 * 1024]})
        h, o, t = (row["engines"][e] for e in rb.ENGINES)
        self.assertEqual(h["p50_us"], 80.0)
        self.assertEqual(o["p50_us"], 120.0)
        self.assertEqual(o["p50_corrected_us"], 100.0)
        self.assertEqual(o["floor_us"], 20.0)
        self.assertAlmostEqual(o["throughput_corrected_per_s"], 100 / (0.012 - 100 * 20e-6))
        self.assertEqual(t["p50_us"], 400.0)
        self.assertAlmostEqual(h["rss_added_mib"], 20.0)
        self.assertAlmostEqual(o["rss_added_mib"], 40.0)
        self.assertAlmostEqual(t["rss_added_mib"], 50.0)
        r = row["ratios"]
        self.assertAlmostEqual(r["latency_hepml_over_ort"], 0.8)        # against the corrected 100 us
        self.assertAlmostEqual(r["latency_hepml_over_ort_raw"], 80 / 120)
        self.assertAlmostEqual(r["throughput_hepml_over_ort"], 12000.0 / (100 / 0.010))
        self.assertAlmostEqual(r["throughput_at_p50_hepml_over_ort"], 1.25)
        self.assertAlmostEqual(r["latency_hepml_over_pytorch"], 0.2)
        self.assertAlmostEqual(r["rss_hepml_over_ort"], 0.5)
        self.assertAlmostEqual(r["rss_hepml_over_pytorch"], 0.4)

    def test_without_floor_uses_raw_ort(self):
        row = rb.summarize_config(self.make(), None, {})
        self.assertAlmostEqual(row["ratios"]["latency_hepml_over_ort"], 80 / 120)
        self.assertIsNone(row["engines"]["hepml"]["rss_added_mib"])
        self.assertIsNone(row["ratios"]["rss_hepml_over_ort"])

    def test_failed_engine(self):
        c = self.make()
        c["rounds"]["pytorch"] = []
        c["errors"]["pytorch"] = "boom"
        row = rb.summarize_config(c, 20.0, {})
        self.assertEqual(row["engines"]["pytorch"], {"error": "boom"})
        self.assertIsNone(row["ratios"]["latency_hepml_over_pytorch"])
        self.assertAlmostEqual(row["ratios"]["latency_hepml_over_ort"], 0.8)

    def test_per_round_floor_takes_precedence(self):
        c = self.make()
        for r, f in zip(c["rounds"]["onnxruntime"], (20.0, 30.0, 10.0)):  # p50s 120, 130, 110
            r["floor_us"] = f
        row = rb.summarize_config(c, 999.0, {})
        o = row["engines"]["onnxruntime"]
        self.assertEqual(o["floor_us"], 20.0)
        self.assertEqual(o["p50_corrected_us"], 100.0)           # median of 100, 100, 100
        self.assertAlmostEqual(row["ratios"]["latency_hepml_over_ort"], 0.8)

    def test_ort_below_its_floor_gives_no_ratio(self):
        row = rb.summarize_config(self.make(), 500.0, {})
        o = row["engines"]["onnxruntime"]
        self.assertIsNone(o["p50_corrected_us"])
        self.assertIsNone(o["throughput_corrected_per_s"])
        self.assertIsNone(row["ratios"]["latency_hepml_over_ort"])
        self.assertAlmostEqual(row["ratios"]["latency_hepml_over_ort_raw"], 80 / 120)

    def test_geomean_summary(self):
        rows = [{"batch": 1, "threads": 1, "ratios": {"latency_hepml_over_ort": v, "throughput_hepml_over_ort": 1 / v,
                                                       "latency_hepml_over_pytorch": None, "rss_hepml_over_ort": None}}
                for v in (0.5, 2.0, 4.0)]
        s = rb.summary_by_setting(rows)
        self.assertEqual(len(s), 1)
        self.assertAlmostEqual(s[0]["latency_hepml_over_ort"], 4.0 ** (1 / 3))
        self.assertAlmostEqual(s[0]["throughput_hepml_over_ort"], 0.25 ** (1 / 3))
        self.assertIsNone(s[0]["latency_hepml_over_pytorch"])
        self.assertEqual(s[0]["hepml_faster_than_ort"], 1)


class Inputs(unittest.TestCase):
    def test_batched_model_shapes(self):
        entry = {"inputs": [{"name": "points", "dtype": "float32", "shape": ["batch", 2, "particles"]}],
                 "data_sets": [{"inputs": {"points": {"shape": [3, 2, 64]}}}]}
        self.assertEqual(rb.expected_shapes(entry, 256), {"points": [256, 2, 64]})

    def test_graph_model_scales_symbolic_axes(self):
        entry = {"inputs": [{"name": "x", "dtype": "float32", "shape": ["nodes", 6]},
                            {"name": "edge_index", "dtype": "int64", "shape": [2, "edges"]}],
                 "data_sets": [{"inputs": {"x": {"shape": [40, 6]}, "edge_index": {"shape": [2, 120]}}}]}
        self.assertEqual(rb.expected_shapes(entry, 4), {"x": [160, 6], "edge_index": [2, 480]})


    def test_graph_note(self):
        manifest = {"models": [
            {"name": "g", "inputs": [{"name": "x", "shape": ["nodes", 6]}, {"name": "e", "shape": [2, "edges"]}],
             "data_sets": [{"inputs": {"x": {"shape": [40, 6]}, "e": {"shape": [2, 120]}}}]},
            {"name": "b", "inputs": [{"name": "x", "shape": ["batch", 3]}],
             "data_sets": [{"inputs": {"x": {"shape": [3, 3]}}}]}]}
        self.assertEqual(rb.graph_note(manifest, ["g", "b"]), "; g: B graphs of 40 nodes / 120 edges side by side")
        self.assertEqual(rb.graph_note(manifest, ["b"]), "")


class DocsBlock(unittest.TestCase):
    BLOCK = rb.BEGIN + "\nnew\n" + rb.END + "\n"

    def test_replaces_only_the_block(self):
        old = "# Benchmarks\n\n## GEMM\nkeep me\n\n" + rb.BEGIN + "\nold\n" + rb.END + "\n\n## Other\nkeep too\n"
        new = rb.replace_block(old, self.BLOCK)
        self.assertIn("## GEMM\nkeep me\n", new)
        self.assertIn("## Other\nkeep too\n", new)
        self.assertIn("\nnew\n", new)
        self.assertNotIn("old", new)
        self.assertEqual(rb.replace_block(new, self.BLOCK), new)   # idempotent

    def test_appends_when_absent_and_creates_when_missing(self):
        self.assertEqual(rb.replace_block("# B\n\n## GEMM\nx\n", self.BLOCK), "# B\n\n## GEMM\nx\n\n" + self.BLOCK)
        self.assertTrue(rb.replace_block(None, self.BLOCK).startswith("# Benchmarks\n\n" + rb.BEGIN))

    def test_markdown_has_the_required_parts(self):
        row = rb.summarize_config(Summaries().make(), 20.0,
                                  {"hepml": [10 * 1024], "onnxruntime": [60 * 1024], "pytorch": [250 * 1024]})
        report = {"date": "2024-01-01 00:00 UTC", "command": "make bench",
                  "machine": {"cpu_model": "Test CPU", "cpus": 2, "cores": 2, "os": "Linux", "loadavg_start": "0.1",
                              "loadavg_end": "0.2"},
                  "versions": {"hepml": "0.1.0", "onnxruntime": "1.30.0", "node": "v20", "pytorch": "1.13"},
                  "settings": {"rounds": 3, "round_seconds": 0.25, "pause_s": 0.1}, "elapsed_s": 12.0,
                  "baselines_mib": {"hepml": 10.0, "onnxruntime": 60.0, "pytorch": 250.0},
                  "floors": {"1": {"onnxruntime": 20.0, "hepml": 1.0}},
                  "rows": [row], "summary": rb.summary_by_setting([row])}
        md = rb.render_markdown(report)
        self.assertTrue(md.startswith(rb.BEGIN) and md.rstrip().endswith(rb.END))
        for needle in ("Test CPU", "2 CPU(s)", "`make bench`", "2024-01-01", "| m | 1 | 1 | 80.0 | 120 | 100 | 400 | 0.80 |",
                       "| m | 1 | 1 | 20.0 | 40.0 | 50.0 | 0.50 | 0.40 |"):
            self.assertIn(needle, md)


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=1).result
    failed = len(result.failures) + len(result.errors)
    print(f"{result.testsRun - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
