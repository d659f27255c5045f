"""The key paths the Zero to JupyterHub chart documents, from its values.schema.yaml, for tests/test_hub_setup.py.

    python hub/k8s/chart_keys.py PATH/TO/zero-to-jupyterhub-k8s/jupyterhub/values.schema.yaml > hub/k8s/chart-keys.txt

One dotted path per line; a path ending in ``.*`` is a mapping the chart passes on as it is (its keys
are free, e.g. ``singleuser.extraEnv.*``); a part written ``/REGEX/`` stands for any key that matches
(``hub.config./^[A-Z].*$/.*``: any traitlets class under ``hub.config``, with free keys).
"""

import sys

import yaml


def key_paths(node: dict, prefix: str = "") -> list[str]:
    found = []
    children = {**(node.get("properties") or {}),
                **{f"/{pattern}/": child for pattern, child in (node.get("patternProperties") or {}).items()}}
    for name, child in children.items():
        path = f"{prefix}{name}"
        found.append(path)
        free = child.get("additionalProperties", False) not in (False, None) or (
            "object" in str(child.get("type", "")) and not child.get("properties"))
        if free:
            found.append(f"{path}.*")
        found.extend(key_paths(child, f"{path}."))
    return found


if __name__ == "__main__":
    schema = yaml.safe_load(open(sys.argv[1]))
    print("\n".join(sorted(set(key_paths(schema)))))
