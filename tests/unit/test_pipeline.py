"""One attempt at a ping or an event (scarf_autoping.pipeline), the same in the sender and the host.

Against a real loopback server, in this process: the pipeline has no thread, no process
and no state of its own.
"""

from scarf_autoping import pipeline


def _ping(url: str, **more: object) -> dict:
    spec = {"method": "GET", "template": url + "/t/{package}/{version}{?ci}", "package": "Requests",
            "version": "9.9", "variables": {}, "ci": False, "timeout": 3.0, "interface": "script"}
    spec.update(more)
    return spec


def test_a_ping_is_built_sent_and_classified(make_collector):
    server = make_collector()
    outcome = pipeline.attempt(_ping(server.url))
    assert (outcome.status, outcome.reason, outcome.retry) == ("sent", "HTTP 204", None)
    assert outcome.url == server.url + "/t/requests/9.9?ci=false"  # the distribution's normalised name
    (request,) = server.requests
    assert request.target == "/t/requests/9.9?ci=false"
    assert request.headers["User-Agent"].startswith("scarf-autoping/")


def test_failures_say_whether_another_attempt_is_worth_it(make_collector):
    assert pipeline.attempt(_ping(make_collector("status:503").url)).retry == 0.0
    assert pipeline.attempt(_ping(make_collector("sequence:429/7").url)).retry == 7.0
    gone = pipeline.attempt(_ping(make_collector("status:404").url))
    assert (gone.status, gone.reason, gone.retry) == ("failed", "HTTP 404", None)


def test_an_event_posts_its_body_and_never_reports_its_url(make_collector):
    server = make_collector()
    spec = {"method": "POST", "url": server.url.replace("://", "://user:secret@") + "/e", "body": '{"event": "x"}',
            "timeout": 3.0, "event": True}
    outcome = pipeline.attempt(spec)
    assert (outcome.status, outcome.url) == ("sent", None)
    (request,) = server.requests
    assert request.body == b'{"event": "x"}' and request.headers["Content-Type"] == "application/json"


def test_the_distributions_own_opt_out_is_an_outcome_not_a_request(make_collector, monkeypatch):
    """``xdist`` is shipped by the distribution ``pytest-xdist``, whose variable is found in the background."""
    server = make_collector()
    monkeypatch.setenv("PYTEST_XDIST_NO_ANALYTICS", "1")
    prepared = pipeline.prepare(_ping(server.url, package="xdist"))
    assert isinstance(prepared, pipeline.Outcome) and prepared.status == "disabled"
    assert server.requests == []


def test_a_broken_spec_is_a_failure_never_an_exception():
    outcome = pipeline.attempt({"method": "GET"})
    assert (outcome.status, outcome.reason, outcome.url) == ("failed", "KeyError", None)
