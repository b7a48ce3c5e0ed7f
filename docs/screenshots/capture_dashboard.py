"""Take the dashboard screenshots in this folder: ``make screenshots-dashboard``.

Starts a real server, five real headless agents (one paused by an admin, one
stopped again so it shows offline), a target on 127.0.0.3 and real proxied
downloads running while the pictures are taken, then photographs
``/dashboard/`` in headless Chromium at 1366x768 and at 390x844 (a phone),
each also as a full-page picture.

A fresh server has no past, so the hour before the server started — per-minute
totals and the request log behind the top lists — is written into its database
first with made-up but consistent numbers (``example.*`` hosts). Everything from
the current minute on, the agents and their rates, is real.

Not part of ``make test``.
"""

from __future__ import annotations

import datetime as dt
import http.client
import os
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.test_dashboard_browser import (  # noqa: E402
    agent_rows,
    log_in,
    set_viewport,
    start_chrome,
)
from tests.support.processes import AgentProcess, ServerProcess, wait_for  # noqa: E402
from tests.support.target import TargetProcess  # noqa: E402

ADMIN, ADMIN_PASSWORD = "admin", "screenshot-pw"
USERS = {"crawler-prod": 0.46, "price-watch": 0.22, "qa-bot": 0.14, "seo-audit": 0.1, "alice": 0.08}
HOSTS = {
    "api.example.com:443": 0.24,
    "cdn.example.net:443": 0.18,
    "shop.example.org:443": 0.13,
    "www.example.com:80": 0.1,
    "search.example.org:443": 0.09,
    "images.example.net:443": 0.08,
    "static.example.com:443": 0.06,
    "feeds.example.net:80": 0.05,
    "m.example.org:443": 0.04,
    "data.example.com:8443": 0.02,
    "old.example.net:80": 0.01,
}
RESULTS = {
    "ok": 0.962,
    "target-timeout": 0.012,
    "dns-failed": 0.008,
    "target-refused": 0.006,
    "no-agent": 0.005,
    "agent-busy": 0.004,
    "forbidden": 0.003,
}
AGENTS = [
    # name, source address, label, what happens to it
    ("berlin-office-7", "127.0.0.2", "Anna K. · Berlin, 3rd floor", "busy"),
    ("lyon-reception", "127.0.0.4", "Reception desk · Lyon", "busy"),
    ("madrid-sales-1", "127.0.0.5", "Sales team · Madrid", "idle"),
    ("qa-lab-3", "127.0.0.6", "QA lab rack, shelf 2", "paused"),
    ("warsaw-desk-2", "127.0.0.7", "Piotr W. · Warsaw", "offline"),
]


def pick(weights: dict[str, float], rng: random.Random) -> str:
    return rng.choices(list(weights), list(weights.values()))[0]


def seed_history(data_dir: Path) -> None:
    """The hour before the server started, written as the flushes would have written it."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "server.settings"
    os.environ["EXITPOOL_DATA_DIR"] = str(data_dir)
    import django

    django.setup()
    from server.fleet.models import Agent, AgentDayUsage, ProxyUser, RequestLog, TrafficMinute

    rng = random.Random(7)
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    users = {u.name: u for u in ProxyUser.objects.all()}
    agents = list(Agent.objects.exclude(name="qa-lab-3"))
    rows: list[RequestLog] = []
    for back in range(59, -1, -1):
        minute = now - dt.timedelta(minutes=back)
        busy = 0.55 + 0.35 * (1 - abs(back - 25) / 35) + rng.uniform(-0.08, 0.08)
        totals = TrafficMinute(minute=minute)
        for _ in range(int(busy * rng.randint(70, 90))):
            host, port = pick(HOSTS, rng).rsplit(":", 1)
            user, result = pick(USERS, rng), pick(RESULTS, rng)
            agent = rng.choice(agents)
            down = int(rng.lognormvariate(14.2, 1.1)) if result == "ok" else 0
            up = int(rng.lognormvariate(9.5, 1.0))
            rows.append(
                RequestLog(
                    time=minute + dt.timedelta(seconds=rng.uniform(0, 59)),
                    kind="connect" if port != "80" else "http",
                    user=users.get(user),
                    user_name=user,
                    agent=agent,
                    agent_name=agent.name,
                    host=host,
                    port=int(port),
                    bytes_up=up,
                    bytes_down=down,
                    duration_ms=rng.randint(80, 4000),
                    status=200 if result == "ok" else 502,
                    result=result,
                )
            )
            totals.requests += 1
            totals.errors += result != "ok"
            totals.bytes_up += up
            totals.bytes_down += down
        totals.save()
    RequestLog.objects.bulk_create(rows, batch_size=2000)
    for agent in agents:
        AgentDayUsage.objects.update_or_create(
            agent=agent,
            day=now.date(),
            defaults={
                "bytes_up": sum(r.bytes_up for r in rows if r.agent == agent) * 5,
                "bytes_down": sum(r.bytes_down for r in rows if r.agent == agent) * 5,
            },
        )


def keep_downloading(server: ServerProcess, target: TargetProcess, agent: str, rate: int) -> None:
    """Slow downloads through one agent, one after another, until the process exits."""
    import base64

    auth = base64.b64encode(f"crawler-prod-agent-{agent}:pw".encode()).decode()
    while True:
        connection = http.client.HTTPConnection("127.0.0.1", server.proxy_port, timeout=30)
        try:
            connection.request(
                "GET",
                f"{target.url}/slow-bytes/{rate * 8}?rate={rate}",
                headers={"Proxy-Authorization": f"Basic {auth}"},
            )
            connection.getresponse().read()
        except (OSError, http.client.HTTPException):
            time.sleep(0.5)
        finally:
            connection.close()


def full_page(browser, path: Path, width: int, height: int, mobile: bool, scale: int) -> None:  # type: ignore[no-untyped-def]
    """A screenshot of the viewport, then one of the whole page."""
    set_viewport(browser, width, height, mobile=mobile, scale=scale)
    time.sleep(1.0)  # the charts redraw on resize
    browser.save_screenshot(str(path.with_suffix(".png")))
    tall = browser.execute_script("return document.documentElement.scrollHeight")
    set_viewport(browser, width, max(height, int(tall)), mobile=mobile, scale=scale)
    time.sleep(1.0)
    browser.save_screenshot(str(path.with_name(path.stem + "-full.png")))


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="exitpool-screenshots-"))
    server = ServerProcess(tmp, env={"EXITPOOL_FLUSH_INTERVAL": "1"})
    server.cli("migrate", "--verbosity", "0")
    server.create_admin(ADMIN, ADMIN_PASSWORD)
    for name in USERS:
        server.cli("proxyuser", name, "--password", "pw")
    server.start()
    key = server.enrollment_key("screenshots")
    processes: list[AgentProcess] = []
    browser = None
    try:
        for name, source, _, _ in AGENTS:
            processes.append(AgentProcess(tmp, server, key, name, source).start())
        labels = "; ".join(
            f"Agent.objects.filter(name={name!r}).update(label={label!r})"
            for name, _, label, _ in AGENTS
        )
        server.cli("shell", "-c", f"from server.fleet.models import Agent; {labels}")
        seed_history(server.data_dir)
        for agent, (_, _, _, role) in zip(processes, AGENTS, strict=True):
            if role == "offline":
                agent.terminate()
        server.cli(
            "shell",
            "-c",
            "from server.fleet.models import Agent; "
            "Agent.objects.filter(name='qa-lab-3').update(paused_by_admin=True)",
        )
        with TargetProcess(host="127.0.0.3") as target:
            for rate, name in ((2_400_000, "berlin-office-7"), (900_000, "lyon-reception")):
                threading.Thread(
                    target=keep_downloading, args=(server, target, name, rate), daemon=True
                ).start()
            browser = start_chrome(tmp / "chrome-profile")
            log_in(browser, server, ADMIN, ADMIN_PASSWORD)
            wait_for(lambda: agent_rows(browser, "qa-lab-3", "paused"), 20, "the admin pause")
            time.sleep(8)  # live rates settle over five ticks
            full_page(browser, HERE / "dashboard-desktop", 1366, 768, mobile=False, scale=1)
            full_page(browser, HERE / "dashboard-phone", 390, 844, mobile=True, scale=2)
    finally:
        if browser is not None:
            browser.quit()
        for agent in processes:
            agent.terminate()
        server.terminate()
    print(f"screenshots written to {HERE}")


if __name__ == "__main__":
    main()
