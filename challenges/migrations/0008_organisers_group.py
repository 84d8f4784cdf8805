"""The `Organisers` group: staff users in it may create challenges in the admin (and are
listed as organisers of what they create). Rights on a challenge come from being listed on
it, not from Django model permissions, so the group carries none."""

from __future__ import annotations

from django.db import migrations

ORGANISERS = "Organisers"


def create_group(apps, schema_editor):  # type: ignore[no-untyped-def]
    apps.get_model("auth", "Group").objects.get_or_create(name=ORGANISERS)


def remove_group(apps, schema_editor):  # type: ignore[no-untyped-def]
    apps.get_model("auth", "Group").objects.filter(name=ORGANISERS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("challenges", "0007_lifecycle_data_card"),
    ]

    operations = [migrations.RunPython(create_group, remove_group)]
