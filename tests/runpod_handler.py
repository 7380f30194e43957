"""A RunPod serverless handler for the tests, served by the SDK's own local test server.

test_runpod.py starts it as a child process:

    python tests/runpod_handler.py --rp_serve_api --rp_api_port N --rp_api_host 127.0.0.1

so `remote_job`'s runpod adapter talks to RunPod's code rather than to our
idea of it. The job's input says what to do: `sleep` seconds first, then
`fail` (raise with that message), `refuse` (return {"error": …}, RunPod's
other way of failing a job) or `echo` (returned as the output, with a
Chinese line added so the round trip is checked both ways).
"""

import time

import runpod


def handler(job):
    given = job["input"]
    time.sleep(float(given.get("sleep", 0)))
    if "fail" in given:
        raise RuntimeError(given["fail"])
    if "refuse" in given:
        return {"error": given["refuse"]}
    return {"echo": given.get("echo"), "said": "处理完毕：一切正常。", "job": job["id"]}


if __name__ == "__main__":
    runpod.serverless.start({"handler": handler})
