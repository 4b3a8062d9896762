"""test_http_browser.py: sosnode's page in a real headless Chromium (Debian's chromium, driven
by playwright-core from npm, tests/http/browser): a room created in the page on node A is
read decrypted by sosctl through node B, a message from sosctl appears decrypted in the page,
and a wrong PIN shows that the messages cannot be decrypted. Skips, saying why, when
chromium, node or playwright-core is not installed (tools/deps.sh --test installs them)."""

import os
import shutil
import subprocess

from soshttp import add_http_node, get
from sosnet import SOSCTL, Net, Skip, run, wait_for, with_id

HERE = os.path.dirname(os.path.abspath(__file__))
BROWSER = os.path.join(HERE, "browser")


def chromium_binary():
    for path in (os.environ.get("CHROMIUM"), "/usr/lib/chromium/chromium",
                 shutil.which("chromium")):
        if path and os.access(path, os.X_OK):
            return path
    return None


def test_page():
    chromium = chromium_binary()
    node = shutil.which("node")
    if not chromium or not node:
        raise Skip("needs Debian's chromium and nodejs (tools/deps.sh --test)")
    if not os.path.isdir(os.path.join(BROWSER, "node_modules", "playwright-core")):
        npm = shutil.which("npm")
        if not npm:
            raise Skip("needs npm to install playwright-core")
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                       cwd=BROWSER, check=True, timeout=300)
    with Net() as net:
        a = add_http_node(net).start()
        b = add_http_node(net).start()
        wait_for("convergence", net.converged)
        js = get(a.http, "/js/libsodium-wrappers.mjs")
        if js.status != 200:
            raise Skip("the page was built without libsodium-wrappers-sumo (npm missing)")
        env = dict(os.environ, SOS_PAGE_URL="http://127.0.0.1:%d" % a.http,
                   SOS_NODE_B=with_id(b.endpoint), SOS_NODE_A_ID=a.node_id,
                   SOSCTL_KNOWN_NODES="/dev/null", SOSCTL=os.path.abspath(SOSCTL), CHROMIUM=chromium)
        p = subprocess.run([node, os.path.join(BROWSER, "page_test.mjs")], env=env,
                           capture_output=True, text=True, timeout=110)
        print(p.stdout.strip())
        assert p.returncode == 0, "page test failed:\n%s\n%s" % (p.stdout, p.stderr[-3000:])


if __name__ == "__main__":
    run([test_page])
