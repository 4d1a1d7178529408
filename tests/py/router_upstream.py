"""A Flask app that routes webhooks the way a Python upstream behind hookgate would, for the
route differential test (tests/it/routes.rs): it answers with the name of the handler that ran,
so the test sees which of the app's routes a raw target reached. Prints `PORT n`, exits when
stdin closes."""

import sys
import threading

from flask import Flask, request
from werkzeug.serving import make_server

app = Flask(__name__)


@app.route("/copyleaks/completed/<scan>", methods=["POST", "PUT"])
def status(scan):
    request.get_data()
    return "status"


@app.route("/copyleaks/export/<scan>", methods=["POST", "PUT"])
def export(scan):
    request.get_data()
    return "export"


@app.errorhandler(404)
def none(_):
    return "none", 404


def main():
    server = make_server("127.0.0.1", 0, app, threaded=True)
    print(f"PORT {server.server_port}", flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sys.stdin.read()


if __name__ == "__main__":
    main()
