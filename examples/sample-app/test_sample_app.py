"""The sample app's own tests: run by the pipeline's test step (`python -m unittest -v`)."""

from __future__ import annotations

import json
import threading
import unittest
import urllib.error
import urllib.request

import sample_app


class ServerTest(unittest.TestCase):
    def setUp(self) -> None:
        self.httpd = sample_app.make_server("127.0.0.1", 0, version="9.9.9-test")
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()
        host, port = self.httpd.server_address[:2]
        self.base = f"http://{host}:{port}"

    def tearDown(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    def get(self, path: str) -> tuple[int, str]:
        with urllib.request.urlopen(self.base + path, timeout=5) as resp:
            return resp.status, resp.read().decode()

    def test_root_answers_with_version(self) -> None:
        self.assertEqual(self.get("/"), (200, "sample-app 9.9.9-test\n"))

    def test_version_json(self) -> None:
        status, body = self.get("/version")
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body), {"app": "sample-app", "version": "9.9.9-test"})

    def test_healthz(self) -> None:
        self.assertEqual(self.get("/healthz"), (200, "ok\n"))

    def test_unknown_path_is_404(self) -> None:
        with self.assertRaises(urllib.error.HTTPError) as ctx:
            self.get("/nope")
        self.assertEqual(ctx.exception.code, 404)

    def test_version_file_is_read(self) -> None:
        self.assertRegex(sample_app.read_version(), r"^\d+\.\d+\.\d+")


if __name__ == "__main__":
    unittest.main()
