"""The "Finance" group: sees projects, keys, routes, prices and the ledger in the admin, and changes nothing.
Give a person access with: staff status on, superuser off, group Finance."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP = "Finance"
VIEW = {
    "accounts": ["project", "apikey", "modelroute", "routetarget"],
    "usage": ["modelprice", "usagerecord"],
}


def group_create(apps, schema_editor):
    # Permissions are normally made after all migrations (post_migrate); make them now on a fresh database.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name=GROUP)
    for app_label, models in VIEW.items():
        codenames = [f"view_{model}" for model in models]
        group.permissions.add(
            *Permission.objects.filter(content_type__app_label=app_label, codename__in=codenames)
        )


def group_delete(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("usage", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(group_create, group_delete)]
