"""Who reads the kubelet's Secret, ConfigMap, downward API and projected files (harness/volume_access.py):
the cases a pod spec decides, each as the kubelet and Linux would."""

from __future__ import annotations

import pytest

from harness.volume_access import UNKNOWN_USER, file_modes, unreadable


def pod(security=None, volume=None, container_security=None, mounts=("v",)):
    return {
        "securityContext": security or {},
        "volumes": [{"name": "v", **(volume or {"secret": {"secretName": "s", "defaultMode": 0o440}})}],
        "containers": [{"name": "c", "securityContext": container_security or {}, "volumeMounts": [{"name": m, "mountPath": "/m"} for m in mounts]}],
    }


@pytest.mark.parametrize(
    ("security", "container_security", "volume", "blocked"),
    [
        ({"runAsUser": 999, "runAsGroup": 999}, None, None, True),  # the bootstrap Job as it was
        ({"runAsUser": 999, "runAsGroup": 999, "fsGroup": 999}, None, None, False),  # fsGroup: group-readable
        ({"runAsUser": 999, "runAsGroup": 999, "fsGroup": 999}, None, {"secret": {"secretName": "s", "defaultMode": 0o400}}, False),  # +0440
        ({"runAsUser": 999}, None, None, False),  # no runAsGroup: gid 0, the files' group
        ({"runAsUser": 999, "runAsGroup": 999, "supplementalGroups": [0]}, None, None, False),
        ({"runAsUser": 999, "runAsGroup": 999}, None, {"secret": {"secretName": "s"}}, False),  # default 0644
        ({"runAsUser": 999, "runAsGroup": 999}, {"runAsUser": 0}, None, False),  # the container runs as root
        ({"runAsUser": 0}, {"capabilities": {"drop": ["ALL"]}}, {"secret": {"secretName": "s", "defaultMode": 0o044}}, True),
        ({"runAsNonRoot": True, "runAsGroup": 5}, None, None, True),  # the image's user: not root, not in group 0
        ({}, None, None, False),  # nothing said: the image's user may be root; not judged
        ({"runAsUser": 999, "runAsGroup": 999}, None,
         {"secret": {"secretName": "s", "items": [{"key": "k", "path": "k", "mode": 0o444}]}}, False),  # fmt: skip
        ({"runAsUser": 999, "runAsGroup": 999}, None,
         {"projected": {"defaultMode": 0o440, "sources": [{"configMap": {"name": "cm"}}, {"secret": {"name": "s"}}]}}, True),  # fmt: skip
    ],
)
def test_who_reads_the_kubelets_files(security, container_security, volume, blocked):
    found = unreadable(pod(security, volume, container_security))
    assert bool(found) == blocked, [u.sentence() for u in found]


def test_a_volume_the_container_does_not_mount_is_not_its_concern():
    assert unreadable(pod({"runAsUser": 999, "runAsGroup": 999}, mounts=())) == []


def test_the_sentence_names_the_container_volume_user_and_mode():
    (found,) = unreadable(pod({"runAsNonRoot": True, "runAsGroup": 5}))
    assert found.uid == UNKNOWN_USER
    assert found.sentence() == (
        "container c runs as the image's non-root user (groups 5) and cannot read the files of volume v (Secret s): "
        "the kubelet writes them root:root mode 0440; no fsGroup makes them its group's"
    )


def test_file_modes_follow_items_then_default_mode_then_0644():
    assert file_modes({"configMap": {"name": "cm"}}) == [("ConfigMap cm", 0o644)]
    items = [{"key": "a", "path": "a"}, {"key": "b", "path": "b", "mode": 0o444}]
    assert file_modes({"secret": {"secretName": "s", "defaultMode": 0o400, "items": items}}) == [("Secret s", 0o400), ("Secret s", 0o444)]
    assert file_modes({"emptyDir": {}}) == []
