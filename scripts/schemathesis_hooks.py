"""schemathesis hooks for scripts/schemathesis.sh (loaded through scripts/schemathesis.toml)."""
import json
from urllib.parse import unquote

import schemathesis


def _in_path(case, character):
    # Path parameters may arrive already percent-encoded (`a%0Ab`) or not (`a\nb`).
    return any(character in unquote(str(value)) for value in (case.path_parameters or {}).values())


@schemathesis.hook
def filter_failure(context, failure, case, response):
    """Drops two failures that are the local emulator's, not the API's.

    ministack's HTTP API matches `ANY /{proxy+}` with a regex whose `.` does not match a line
    feed, so a path parameter holding "\\n" (e.g. GET /results/a%0Ab) never reaches the function:
    the emulator answers 404 {"message": "Not Found"} itself, which is not the documented error
    body. And it decodes `%23` in a path into `#` and cuts the path there, as if the rest were a
    fragment, and `%3F` into `?` and cuts the path there, as if the rest were a query:
    `POST /monitors/a%23b/run` reaches the function as `POST /monitors/a`, a route without POST,
    so the router answers 405 with no body (API Gateway passes `a%23b` on, and the answer is the
    documented 404; the API's own tests send such ids and get it). Only those exact answers to those exact inputs are dropped;
    every other failure, and every other check of the same request, still counts.
    """
    if response.status_code == 405 and not response.content:
        return not (_in_path(case, "#") or _in_path(case, "?"))
    if response.status_code != 404:
        return True
    try:
        body = json.loads(response.content)
    except ValueError:
        return True
    return not (_in_path(case, "\n") and body == {"message": "Not Found"})
