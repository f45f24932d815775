"""Create the six role groups. Their permissions are (re)assigned after every migrate by
`apps.accounts.roles.sync_role_permissions`, because later apps' permissions do not exist yet."""

from django.db import migrations

ROLES = ["Data scientists", "ML engineers", "Approvers", "Operations", "Business owners", "Platform admins"]


def create_role_groups(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for name in ROLES:
        Group.objects.get_or_create(name=name)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial"), ("auth", "0012_alter_user_first_name_max_length")]

    operations = [migrations.RunPython(create_role_groups, migrations.RunPython.noop)]
