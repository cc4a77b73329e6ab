"""Near-duplicate groups move from every entity name's row to one row per distinct name
(docs/design.md, "Entity groups"): grouping a 1M-name job rewrote every row."""

import django.db.models.deletion
from django.db import migrations, models


def members_from_names(apps, schema_editor):
    EntityName = apps.get_model("jobs", "EntityName")
    EntityGroupMember = apps.get_model("jobs", "EntityGroupMember")
    distinct = (EntityName.objects.order_by().values_list("job_id", "normalized_name", "entity_key", "group_key",
                                                          "group_size").distinct())
    chunk = []
    for job_id, name, key, group_key, group_size in distinct.iterator(chunk_size=5000):
        chunk.append(EntityGroupMember(job_id=job_id, normalized_name=name, entity_key=key, group_key=group_key,
                                       group_size=group_size))
        if len(chunk) == 5000:
            EntityGroupMember.objects.bulk_create(chunk, ignore_conflicts=True)
            chunk = []
    EntityGroupMember.objects.bulk_create(chunk, ignore_conflicts=True)


def names_from_members(apps, schema_editor):
    """Going back: every name takes its member's group (the names' columns are back by then)."""
    EntityName = apps.get_model("jobs", "EntityName")
    EntityGroupMember = apps.get_model("jobs", "EntityGroupMember")
    EntityName.objects.update(group_key=models.F("entity_key"), group_size=1)
    for member in EntityGroupMember.objects.exclude(group_size=1).iterator(chunk_size=5000):
        EntityName.objects.filter(job_id=member.job_id, normalized_name=member.normalized_name).update(
            group_key=member.group_key, group_size=member.group_size)


class Migration(migrations.Migration):

    dependencies = [
        ('jobs', '0009_batch_pending_index'),
    ]

    operations = [
        migrations.CreateModel(
            name='EntityGroupMember',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('normalized_name', models.CharField(max_length=255)),
                ('entity_key', models.CharField(max_length=16)),
                ('group_key', models.CharField(max_length=16)),
                ('group_size', models.PositiveIntegerField(default=1)),
                ('job', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE,
                                          related_name='entity_group_members', to='jobs.processingjob')),
            ],
            options={
                'indexes': [models.Index(fields=['job', '-group_size', 'group_key'], name='entity_member_job_group')],
                'constraints': [models.UniqueConstraint(fields=('job', 'normalized_name'),
                                                        name='entity_member_job_name')],
            },
        ),
        # Going back, the names' columns and index are restored first (an index cannot be
        # built in a transaction with pending updates), then the names take their groups.
        migrations.RunPython(members_from_names, names_from_members),
        migrations.RemoveIndex(
            model_name='entityname',
            name='entity_name_job_group',
        ),
        # A default only so that going back can add the column to existing rows.
        migrations.AlterField(
            model_name='entityname',
            name='group_key',
            field=models.CharField(max_length=16, default=''),
        ),
        migrations.RemoveField(
            model_name='entityname',
            name='group_size',
        ),
        migrations.RemoveField(
            model_name='entityname',
            name='group_key',
        ),
        migrations.AddField(
            model_name='entityname',
            name='group',
            field=models.ForeignObject(from_fields=['job', 'normalized_name'],
                                       on_delete=django.db.models.deletion.DO_NOTHING, related_name='+',
                                       to='jobs.entitygroupmember', to_fields=['job', 'normalized_name']),
        ),
        migrations.AddIndex(
            model_name='entityname',
            index=models.Index(fields=['job', 'normalized_name', 'item_index'], name='entity_name_job_name'),
        ),
    ]
