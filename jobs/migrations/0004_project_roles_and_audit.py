"""Project roles, operator permissions and the audit log.

The members table Django made for `Project.members` becomes the ProjectMembership model (the
documented way to add a `through` model to an existing many-to-many: declare the model in the
migration state only), and gains a role. The table keeps its name and the new columns have
database defaults, so the release before this one, still running during a rolling upgrade
(docs/operations.md, "Upgrades"), keeps reading and adding members.

Existing members: a project's creator becomes its owner, everyone else an analyst. Before roles
every member could submit, cancel, retry and save mappings (what an analyst may), and also add
anyone, which is what roles take away from all but owners. A project whose creator is not a
member (created by a script, or the creator's account deleted) makes all its members owners,
so that no existing project is left without anyone who can manage it.
"""

import django.db.models.deletion
import django.db.models.functions.datetime
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


def assign_roles(apps, schema_editor):
    Membership = apps.get_model("jobs", "ProjectMembership")
    Project = apps.get_model("jobs", "Project")
    for project in Project.objects.filter(memberships__isnull=False).distinct().iterator():
        members = Membership.objects.filter(project=project)
        creator = members.filter(user_id=project.created_by_id) if project.created_by_id else members.none()
        if creator.exists():
            creator.update(role="owner")
            members.exclude(user_id=project.created_by_id).update(role="analyst")
        else:
            members.update(role="owner")


class Migration(migrations.Migration):

    dependencies = [
        ("jobs", "0003_imports_and_lean_transaction_indexes"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name="ProjectMembership",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                                   verbose_name="ID")),
                        ("project", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE,
                                                      related_name="memberships", to="jobs.project")),
                        ("user", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE,
                                                   related_name="zenith_memberships", to=settings.AUTH_USER_MODEL)),
                    ],
                    options={"db_table": "jobs_project_members", "unique_together": {("project", "user")}},
                ),
                migrations.AlterField(
                    model_name="project",
                    name="members",
                    field=models.ManyToManyField(blank=True, related_name="zenith_projects",
                                                 through="jobs.ProjectMembership",
                                                 through_fields=("project", "user"), to=settings.AUTH_USER_MODEL),
                ),
            ],
        ),
        migrations.AddField(
            model_name="projectmembership",
            name="role",
            field=models.CharField(choices=[("owner", "Owner"), ("analyst", "Analyst"), ("viewer", "Viewer")],
                                   db_default="analyst", default="analyst", max_length=16),
        ),
        migrations.AddField(
            model_name="projectmembership",
            name="added_at",
            field=models.DateTimeField(db_default=django.db.models.functions.datetime.Now(),
                                       default=django.utils.timezone.now),
        ),
        migrations.AlterUniqueTogether(name="projectmembership", unique_together=set()),
        migrations.AddConstraint(
            model_name="projectmembership",
            constraint=models.UniqueConstraint(fields=("project", "user"), name="membership_project_user"),
        ),
        migrations.AlterModelOptions(name="projectmembership", options={"ordering": ["project", "user"]}),
        migrations.AlterModelOptions(
            name="project",
            options={"ordering": ["id"], "permissions": [
                ("operate_all_projects", "Can read every project and cancel, retry or re-queue any job"),
                ("force_breaker", "Can force a data type's circuit breaker open, closed or back to automatic"),
            ]},
        ),
        migrations.RunPython(assign_roles, migrations.RunPython.noop),
        migrations.CreateModel(
            name="AuditEntry",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("at", models.DateTimeField(default=django.utils.timezone.now)),
                ("actor_name", models.CharField(max_length=150)),
                ("project_key", models.CharField(blank=True, default="", max_length=64)),
                ("action", models.CharField(choices=[
                    ("project.created", "Project created"), ("job.submitted", "Job submitted"),
                    ("job.cancelled", "Job cancelled"), ("job.retried", "Job retried"),
                    ("job.requeued", "Dead-lettered batches re-queued"), ("member.added", "Member added"),
                    ("member.role_changed", "Member's role changed"), ("member.removed", "Member removed"),
                    ("mapping.saved", "Mapping saved"), ("mapping.deleted", "Mapping deleted"),
                    ("breaker.forced", "Circuit breaker forced")], max_length=32)),
                ("target", models.CharField(blank=True, default="", max_length=255)),
                ("details", models.JSONField(blank=True, default=dict)),
                ("actor", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL,
                                            related_name="+", to=settings.AUTH_USER_MODEL)),
                ("project", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL,
                                              related_name="audit_entries", to="jobs.project")),
            ],
            options={
                "verbose_name_plural": "audit entries",
                "ordering": ["-at", "-id"],
                "indexes": [models.Index(fields=["project", "-at"], name="audit_project_at"),
                            models.Index(fields=["at"], name="audit_at")],
            },
        ),
    ]
