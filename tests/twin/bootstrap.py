"""The twin's Lambda runtime: what the python3.12 runtime does inside one sandbox.

Run as ``python3.12 -I -S bootstrap.py SPEC_JSON`` (isolated, no site-packages): ``sys.path``
becomes exactly the standard library, the function's folder, the layer folders and the
runtime's boto3, in Lambda's order. Then, like the runtime interface client, it imports
``handler`` once (the cold start) and answers invocations until stdin closes.

Standard library only: nothing from the development venv may leak in. Invocations arrive
as JSON lines on stdin; answers leave on the descriptor that was stdout at start, while
fd 1 itself is pointed at stderr so that the function's logs (Powertools prints JSON to
stdout) go to the log file and never into the protocol.
"""

import json
import os
import sys
import time
import traceback

_START = time.monotonic()


class Context:
    """The attributes and method of a Lambda context object."""

    def __init__(self, spec, request):
        self.function_name = spec["function_name"]
        self.function_version = "$LATEST"
        self.invoked_function_arn = (
            f"arn:aws:lambda:{spec['region']}:123456789012:function:{self.function_name}"
        )
        self.memory_limit_in_mb = spec["memory_mb"]
        self.aws_request_id = request["request_id"]
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = "2026/12/02/[$LATEST]twin"
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + spec["timeout_s"]

    def get_remaining_time_in_millis(self):
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _peak_rss_mb():
    """VmHWM: this process's peak resident memory. Not ru_maxrss, which Linux carries over
    from the parent across fork and exec (the sandbox would report the test runner's)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _error(exc):
    return {
        "errorType": type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_exception(exc),
    }


def main():
    spec = json.loads(sys.argv[1])
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    # Lambda's order: the function, the layers (/opt/python), the runtime's boto3, stdlib.
    stdlib = [p for p in sys.path if p.startswith(sys.base_prefix)]
    sys.path[:] = [spec["task_root"], *spec["layers"], spec["runtime_dir"], *stdlib]
    os.chdir(spec["task_root"])

    init_error = None
    try:
        import handler as module  # the function's own module, as the runtime imports it

        function = module.handler
    except BaseException as exc:  # the runtime reports an init error on every invoke
        init_error = _error(exc)
    init_ms = (time.monotonic() - _START) * 1000
    protocol.write(json.dumps({"ready": True, "init_ms": init_ms, "init_error": init_error}))
    protocol.write("\n")

    for line in sys.stdin:
        request = json.loads(line)
        started = time.monotonic()
        if init_error is not None:
            answer = {"error": init_error}
        else:
            try:
                result = function(request["event"], Context(spec, request))
                answer = {"result": result}
            except Exception as exc:
                answer = {"error": _error(exc)}
        answer["modules"] = sorted({name.split(".")[0] for name in sys.modules})
        answer["duration_ms"] = (time.monotonic() - started) * 1000
        answer["max_rss_mb"] = _peak_rss_mb()
        protocol.write(json.dumps(answer, default=str) + "\n")


if __name__ == "__main__":
    main()
