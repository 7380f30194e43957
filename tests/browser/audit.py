"""Page audits for the browser tests: axe-core, console errors, horizontal overflow.

axe-core is vendored in vendor/ (test tooling only; never served by the app).
The app's CSP (script-src 'self') refuses the inline <script> that
`page.add_script_tag(path=...)` inserts, so axe runs in a context opened with
`axe_context()` (bypass_csp=True). Console checks must use normal contexts:
with the CSP bypassed its violations would not happen.
"""

import json
from pathlib import Path

AXE = Path(__file__).with_name("vendor") / "axe.min.js"
SERIOUS = ("serious", "critical")
NODES_SHOWN = 5  # per violation, in reports

# What htmx is doing is visible in the DOM: wait for a page to be quiet before looking at it.
HTMX_IDLE = "() => window.htmx !== undefined && !document.querySelector('.htmx-request')"


def axe_context(browser, **options):
    """A context for axe runs only: the CSP bypassed so that axe can be injected."""
    return browser.new_context(bypass_csp=True, **options)


def settle(page) -> None:
    """Wait until the page has loaded, htmx has started and no htmx request is in flight."""
    page.wait_for_load_state("load")
    page.wait_for_function(HTMX_IDLE)


def axe_results(page) -> dict:
    """Run axe on the whole document (the rules axe enables by default).

    Its violations and the checks it could not decide (incomplete), every impact.
    """
    if not page.evaluate("typeof window.axe === 'object'"):
        page.add_script_tag(path=str(AXE))
    return page.evaluate(
        """async () => {
            const results = await axe.run(document, {resultTypes: ['violations', 'incomplete']});
            const shown = v => ({
                id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl, tags: v.tags,
                nodes: v.nodes.map(n => ({
                    target: n.target, html: n.html, summary: n.failureSummary,
                })),
            });
            return {
                url: results.url,
                violations: results.violations.map(shown),
                incomplete: results.incomplete.map(shown),  // for a person to review
            };
        }"""
    )


def serious(violations: list[dict]) -> list[dict]:
    """The serious and critical ones, each with its first few nodes (target and HTML)."""
    return [
        {
            "id": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "count": len(v["nodes"]),
            "nodes": [
                {"target": n["target"], "html": n["html"][:200], "why": _why(n["summary"])}
                for n in v["nodes"][:NODES_SHOWN]
            ],
        }
        for v in violations
        if v["impact"] in SERIOUS
    ]


def _why(summary: str) -> str:
    """The first reason in axe's failure summary ("Fix any of the following:\n  reason...")."""
    reasons = [line.strip() for line in (summary or "").splitlines()[1:] if line.strip()]
    return reasons[0] if reasons else ""


def axe_violations(page) -> list[dict]:
    """Serious and critical axe violations on the page: id, impact, help, first node targets."""
    return serious(axe_results(page)["violations"])


def describe(violations: list[dict]) -> str:
    """A readable list of violations for an assertion message."""
    lines = []
    for v in violations:
        lines.append(f"{v['id']} ({v['impact']}, {v['count']} node(s)): {v['help']}")
        for n in v["nodes"]:
            lines.append(f"    {' '.join(n['target'])}  {n['html']}")
            if n["why"]:
                lines.append(f"      {n['why']}")
    return "\n".join(lines)


def save(path: Path, data) -> None:
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False))


def watch_console(page) -> list[str]:
    """Collect the page's console errors (CSP violations among them) and uncaught exceptions.

    The list grows as the page lives; each entry names the URL it came from.
    """
    errors = []

    def on_console(message):
        if message.type == "error":
            url = message.location.get("url") or page.url
            errors.append(f"console.error [{url}]: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: errors.append(f"pageerror [{page.url}]: {exc}"))
    return errors


def own_status_logged(error: str, url: str, status: int) -> bool:
    """Chromium logs a document's own 4xx/5xx status as a console error; an error page means it."""
    return error.startswith(
        f"console.error [{url}]: Failed to load resource: "
        f"the server responded with a status of {status} "
    )


# The elements sticking out past the right edge: the innermost ones (the cause, not its parents).
OVERFLOW = """() => {
    const width = document.documentElement.clientWidth;
    const scrolled = el => {  // inside a box that scrolls or clips: not the page's overflow
        for (let up = el.parentElement; up && up !== document.body; up = up.parentElement) {
            if (getComputedStyle(up).overflowX !== 'visible') return true;
        }
        return false;
    };
    const flagged = [...document.querySelectorAll('body *')].filter(el => {
        const box = el.getBoundingClientRect();
        if (box.width === 0 || scrolled(el)) return false;
        // Its box sticks out, or what it holds spills out of it (a long word, a <pre>).
        const spills = getComputedStyle(el).overflowX === 'visible'
            && box.left + el.scrollWidth > width + 0.5;
        return box.right > width + 0.5 || spills;
    });
    const innermost = flagged.filter(el => !flagged.some(o => o !== el && el.contains(o)));
    const name = el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
        + (el.classList.length ? '.' + [...el.classList].join('.') : '');
    return {
        scrollWidth: document.documentElement.scrollWidth,
        innerWidth: window.innerWidth,
        culprits: innermost.slice(0, 8).map(el =>
            `${el.parentElement ? name(el.parentElement) + ' > ' : ''}${name(el)} `
            + `(right ${Math.round(el.getBoundingClientRect().left + el.scrollWidth)}px): `
            + el.outerHTML.slice(0, 120)),
    };
}"""


def overflow(page) -> dict:
    """{scrollWidth, innerWidth, culprits}: what makes the page wider than the window."""
    return page.evaluate(OVERFLOW)
