# A JupyterHub on one machine, for trying the series' hub set-up and for measuring it (hub/measure.py,
# tests/test_hub.py): 127.0.0.1 only, a shared password (DummyAuthenticator), one local process per
# participant (SimpleLocalProcessSpawner: all participants run as the hub's own user, each with a home
# folder of its own). Not for a real workshop: there, The Littlest JupyterHub or Zero to JupyterHub
# (hub/tljh, hub/k8s) give each participant a system user or a container.
#
# Everything it needs comes from the environment, set by hub/local.py:
#   CONVAE_HUB_STATE   folder for the hub's database, cookie secret and the participants' homes
#   CONVAE_HUB_PORT    the public port (the proxy's), CONVAE_HUB_API_PORT the hub's own, CONVAE_HUB_PROXY_API_PORT
#   CONVAE_HUB_PROXY   the configurable-http-proxy executable
#   CONVAE_HUB_PASSWORD the shared password
#   CONVAE_HUB_NOTEBOOKS the notebooks each participant gets a copy of (copied at the first start)
#   CONVAE_HUB_OWN_RUNS  set: each participant's runs folder is ~/runs (a copy of the folder it names, if any)
#   CONVAE_RUNS_DIR, CONVAE_DATA_DIR, CONVAE_PROFILE, CONVAE_DATASET: passed on to every participant
import os
import shutil
import sys
from pathlib import Path

c = get_config()  # noqa: F821 (JupyterHub's config loader provides it)

state = Path(os.environ["CONVAE_HUB_STATE"])
c.JupyterHub.bind_url = f"http://127.0.0.1:{os.environ['CONVAE_HUB_PORT']}"
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = int(os.environ["CONVAE_HUB_API_PORT"])
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{os.environ['CONVAE_HUB_PROXY_API_PORT']}"
c.ConfigurableHTTPProxy.command = [os.environ["CONVAE_HUB_PROXY"]]
c.JupyterHub.db_url = f"sqlite:///{state / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(state / "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = str(state / "jupyterhub.pid")

c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = os.environ["CONVAE_HUB_PASSWORD"]
c.Authenticator.allow_all = True  # anyone with the password: a workshop's shared secret

c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = str(state / "home" / "{username}")
# the hub's own Python runs the participants' servers (and their kernels): the environment it was started from
c.Spawner.cmd = [sys.executable, "-m", "jupyterhub.singleuser"]
c.Spawner.default_url = "/lab"
c.Spawner.start_timeout = 180  # a loaded machine starts a server slowly
c.Spawner.http_timeout = 180
c.Spawner.environment = {key: os.environ[key] for key in
                         ("CONVAE_RUNS_DIR", "CONVAE_DATA_DIR", "CONVAE_PROFILE", "CONVAE_DATASET",
                          "CONVAE_CIFAR10_URL", "OMP_NUM_THREADS", "MPLBACKEND") if key in os.environ}
if os.environ.get("CONVAE_HUB_OWN_RUNS"):  # hub/measure.py: each participant a runs folder of their own
    c.Spawner.environment["CONVAE_RUNS_DIR"] = lambda spawner: str(Path(spawner.home_dir) / "runs")
if os.geteuid() == 0:  # a root hub (a CI container) starts the servers as root: Jupyter asks for consent
    c.Spawner.args = ["--allow-root"]


def copy_notebooks(spawner):
    """Give a participant their own copy of the notebooks at the first start (later starts keep their edits);
    with ``CONVAE_HUB_OWN_RUNS`` naming a folder, a copy of its runs too."""
    source = os.environ.get("CONVAE_HUB_NOTEBOOKS")
    target = Path(spawner.home_dir) / "convae" / "notebooks"
    if source and not target.exists():
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.py", "conftest.py", "__pycache__"))
    runs = os.environ.get("CONVAE_HUB_OWN_RUNS", "")
    if os.path.isdir(runs) and not (Path(spawner.home_dir) / "runs").exists():
        shutil.copytree(runs, Path(spawner.home_dir) / "runs")


c.Spawner.pre_spawn_hook = copy_notebooks
