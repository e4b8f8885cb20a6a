"""moto's server, answering one request at a time.

moto's own `moto_server` serves requests on many threads, and its in-memory backends are not
thread-safe: concurrent transactions can fail with an internal error ("dictionary changed size
during iteration"). The tests and the local scripts run this launcher instead, which is
moto's server with threading off. Usage: python moto_serial.py HOST PORT
"""
import os
import sys

from werkzeug.serving import run_simple

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    os.environ.setdefault("MOTO_PORT", str(port))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(host, port, app, threaded=False, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
