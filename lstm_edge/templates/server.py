"""Serve the model over HTTP with the Python standard library (http.server, json) and lstm-edge; no web framework.

pip install 'lstm-edge[cpu]'
python server.py [--host 127.0.0.1] [--port 8000] [--max-body BYTES] [--allow-nonfinite]   # --port 0: any free port

At start the model is opened with lstm_edge.load, which first reproduces the golden cases on this machine (or
finds that pass cached); a model that fails it is refused in one line and the server exits 1 without serving.

GET  /healthz     → {"status": "ok", "runtime", "version", "variant", "self_check", "verdict"}
POST /v1/predict  {"x": ..., "h0": ..., "c0": ...} → {"y": ..., "hn": ..., "cn": ...}
    x in the model's own layout ([B, T, F] floats; [T, B, F] time-major; token ids [B, T] for a token model);
    h0/c0 optional ([L, B, H], zeros when left out). A model exported whole, without state I/O, takes x alone and
    returns y alone. Bad JSON or shapes → 400 {"error": "one line: the problem — the fix"}; a body over
    --max-body → 413; an unknown path → 404. NaN or ±Infinity in the input (JSON's non-standard literals) → 400,
    unless the server was started with --allow-nonfinite (then they reach the model and its answer may hold them).

Threads: each request runs on its own thread and calls runner.run without a lock. run() is thread-safe in
lstm-edge: an ONNX Runtime session's run() may be called from several threads at once (the provider used here),
and the runners whose runtime is not re-entrant (openvino, tract, the ONNX reference) take their own lock inside
(lstm_edge.runtimes.base: Runner._lock). Streams keep per-call buffers and are not thread-safe; this server does
not use them: every request is a whole sequence from the state it sends.
"""

from __future__ import annotations

import argparse
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

import lstm_edge
from lstm_edge.errors import first_line
from lstm_edge.limits import MAX_JSON_INPUT_BYTES

HERE = Path(__file__).resolve().parent
STATE_NAMES = ("h0", "c0")


class Model:
    """The runner and the graph's own input and output names (golden/index.json), as the handlers use them."""

    def __init__(self, self_check: bool = True, allow_nonfinite: bool = False) -> None:
        manifest = json.loads((HERE / "manifest.json").read_text())
        index = json.loads((HERE / "golden" / "index.json").read_text())
        self.variant = manifest["embed"]["variant"]
        self.tokens = bool(manifest.get("config", {}).get("vocab_size"))
        self.inputs, self.outputs = index["inputs"], index["outputs"]
        self.states = [n for n in self.inputs if n in STATE_NAMES]  # (h0, c0); (h0,) for a GRU; none: whole graph
        # Runs the self-check first: raises ParityError (an LstmEdgeError) for a model that fails it here.
        # --no-self-check skips it, as the refusal's words offer (and /healthz says "skipped")
        # --allow-nonfinite lets NaN/±Inf through the input check, as the 400's words offer
        self.runner = lstm_edge.load(
            HERE, provider="cpu", variant=self.variant, self_check=self_check, allow_nonfinite=allow_nonfinite
        )
        d = self.runner.describe()
        self.health = {
            "status": "ok",
            "runtime": d["runtime"],
            "version": d["version"],
            "variant": self.variant,
            "self_check": d["self_check"],
            "verdict": manifest["embed"].get("verdict", "unverified"),  # quantize's, on this variant
        }

    def array(self, name: str, value: object, integers: bool) -> np.ndarray:
        """One request field as a numpy array: int64 ids (token x, lengths) or float32.

        Raises LstmEdgeError (one line) for a ragged list or values of another kind (strings, floats as ids)."""
        try:
            a = np.asarray(value)
        except ValueError:  # a ragged list: numpy cannot make one array of it
            raise lstm_edge.LstmEdgeError(
                f"{name} is a ragged list", f"give {name} as a rectangular nested list of numbers"
            ) from None
        kinds = "iu" if integers else "iuf"
        if a.dtype.kind not in kinds:
            want = "integers" if integers else "numbers"
            raise lstm_edge.LstmEdgeError(
                f"{name} holds {a.dtype.name} values", f"give {name} as nested lists of {want}"
            )
        return a.astype(np.int64 if integers else np.float32)

    def predict(self, body: object) -> dict:
        """{"x", optional state and lengths} → {output name: nested list}; raises LstmEdgeError, one line."""
        allowed = ["x", *self.states, *(["lengths"] if "lengths" in self.inputs else [])]
        if not isinstance(body, dict) or "x" not in body:
            raise lstm_edge.LstmEdgeError('the body has no "x"', 'send a JSON object {"x": [[[...]]]}')
        extra = sorted(set(body) - set(allowed))
        if extra:
            raise lstm_edge.LstmEdgeError(
                f"this model takes no {', '.join(extra)}", f"send only {', '.join(allowed)} (optional: all but x)"
            )
        x = self.array("x", body["x"], self.tokens)
        given = [n for n in self.states if n in body]
        if given and len(given) != len(self.states):
            raise lstm_edge.LstmEdgeError(f"only {given[0]} was given", f"give {' and '.join(self.states)} together")
        state = tuple(self.array(n, body[n], False) for n in self.states) if given else None
        lengths = self.array("lengths", body["lengths"], True) if "lengths" in body else None
        y, final = self.runner.run(x, state, lengths)
        got = (y, *final)[: len(self.outputs)]  # a whole graph without state I/O gives y alone
        return {name: a.tolist() for name, a in zip(self.outputs, got, strict=True)}


def handler(model: Model, max_body: int) -> type[BaseHTTPRequestHandler]:
    """The request handler class for `model`, refusing bodies over `max_body` bytes. Its handlers raise nothing:
    every failure is an answer (400, 404, 411, 413, 500) with {"error": one line}."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "lstm-edge-http/1"

        def reply(self, status: int, payload: dict) -> None:
            data = (json.dumps(payload, ensure_ascii=False) + "\n").encode()  # UTF-8, as JSON is: "—" unescaped
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def not_found(self) -> None:
            fix = "use GET /healthz or POST /v1/predict"
            self.reply(404, {"error": f"no route {self.command} {self.path} — {fix}"})

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.path == "/healthz":
                self.reply(200, model.health)
            else:
                self.not_found()

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            if self.path != "/v1/predict":
                return self.not_found()
            try:
                length = int(self.headers.get("Content-Length", ""))
                if length < 0:
                    raise ValueError(length)
            except ValueError:
                self.close_connection = True
                return self.reply(411, {"error": "no valid Content-Length — send the JSON body with its length"})
            if length > max_body:
                self.close_connection = True  # the body is left unread
                fix = "send fewer or shorter sequences per request, or start the server with a larger --max-body"
                return self.reply(413, {"error": f"the body is {length} bytes, over the {max_body} limit — {fix}"})
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw)
            except (ValueError, UnicodeDecodeError) as e:
                return self.reply(400, {"error": f'the body is not JSON ({e}) — send a JSON object {{"x": ...}}'})
            try:
                self.reply(200, model.predict(body))
            except lstm_edge.LstmEdgeError as e:  # the input's problem and its fix, one line
                self.reply(400, {"error": first_line(e, limit=1000)})
            except Exception as e:  # noqa: BLE001 - a server answers every request; never a traceback
                self.reply(500, {"error": f"{type(e).__name__}: {first_line(e)}"})

    return Handler


def main() -> None:
    """Open the model (self-check first), then serve until interrupted.

    Raises SystemExit(1) with "error: " and the one-line reason when the model cannot be opened or fails its
    self-check; nothing is served then."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    p.add_argument("--port", type=int, default=8000, help="port (0: any free port, printed at start)")
    p.add_argument("--max-body", type=int, default=MAX_JSON_INPUT_BYTES, help="largest request body in bytes (413)")
    p.add_argument("--no-self-check", action="store_true", help="serve without reproducing the golden cases first")
    p.add_argument(
        "--allow-nonfinite", action="store_true", help="pass NaN/±Infinity in x or the state to the model (else: 400)"
    )
    args = p.parse_args()
    try:
        model = Model(self_check=not args.no_self_check, allow_nonfinite=args.allow_nonfinite)
    except lstm_edge.LstmEdgeError as e:  # the failed self-check's one line (or a folder that cannot be opened)
        raise SystemExit(f"error: {e}") from None
    server = ThreadingHTTPServer((args.host, args.port), handler(model, args.max_body))
    host, port = server.server_address[:2]
    print(f"serving {model.variant} (self-check {model.health['self_check']}) on http://{host}:{port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    sys.exit(0)


if __name__ == "__main__":
    main()
