"""docs/local-platform-fields.md, the fields the local platform models and those it does not: every
field a rendered overlay uses is on one side of it, and `up` refuses a field on neither side."""

from __future__ import annotations

import copy

import pytest

from harness import reference
from harness.errors import HarnessError
from harness.platforms.local import fidelity


@pytest.mark.parametrize("overlay", reference.overlays())
def test_every_field_of_every_overlay_is_listed_as_modelled_or_not(overlay):
    missing = fidelity.unlisted(reference.render(overlay).objects, fidelity.load())
    assert missing == [], "fields on neither side of docs/local-platform-fields.md:\n" + "\n".join(missing)


def test_the_list_has_both_sides_and_each_row_a_field_path():
    entries = fidelity.load()
    assert any(e.modelled for e in entries) and any(not e.modelled for e in entries)
    assert len({e.field for e in entries}) == len(entries), "a field listed twice"
    for entry in entries:
        assert entry.field.split(".", 1)[0][:1].isupper() or entry.field.startswith("*."), entry.field


def test_paths_name_the_pod_for_a_template_and_stop_at_data_maps():
    sts = reference.render("kind").redis_statefulset()
    paths = fidelity.field_paths(sts)
    assert "Pod.spec.containers[].image" in paths and "Pod.metadata.labels" in paths
    assert "StatefulSet.spec.replicas" in paths and "StatefulSet.metadata.labels" in paths
    assert not any(p.startswith("StatefulSet.spec.template") for p in paths)
    assert fidelity.covers("*.metadata.name", "Job.metadata.name") and fidelity.covers("Role.*", "Role.rules[].verbs[]")
    assert not fidelity.covers("Role.*", "RoleBinding.roleRef.kind")


def test_up_refuses_a_field_the_list_does_not_name(tmp_path):
    objects = copy.deepcopy(reference.render("kind").objects)
    sts = next(o for o in objects if o["kind"] == "StatefulSet")
    sts["spec"]["template"]["spec"]["hostNetwork"] = True
    with pytest.raises(HarnessError, match=r"^StatefulSet redis-cluster: Pod.spec.hostNetwork is not modelled by the local platform"):
        fidelity.refuse_unlisted(objects)
    fidelity.refuse_unlisted(reference.render("kind").objects)  # the reference itself is listed
