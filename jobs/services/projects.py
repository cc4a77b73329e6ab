"""Projects, their members and their roles (jobs.selectors.access says who may call what).

A project always keeps an owner: the last one can neither leave, be removed nor be demoted.
Every change is written to the audit log in the same transaction."""

from __future__ import annotations

import secrets
import string
from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils.text import slugify

from jobs.errors import MembershipConflict, NotFound, SubmissionError
from jobs.models import AuditAction, Project, ProjectMembership, ProjectRole
from jobs.services import audit

SUFFIX_ALPHABET = string.ascii_lowercase + string.digits
SUFFIX_LENGTH = 6
MAX_ID_LENGTH = 64


def new_project_id(hint: str) -> str:
    """`hint` as a slug plus a random suffix. Every new project gets one, so the id a caller
    gets back never says whether another project already used the hint: an id chosen
    verbatim would answer "taken" for projects the caller cannot see."""
    base = slugify(hint)[:MAX_ID_LENGTH - SUFFIX_LENGTH - 1].strip("-")
    if not base:
        raise SubmissionError("give an id or a name that has letters or digits")
    return f"{base}-{''.join(secrets.choice(SUFFIX_ALPHABET) for _ in range(SUFFIX_LENGTH))}"


def create_project(*, name: str, creator: Any, id_hint: str = "") -> Project:
    """Creates a project whose creator is its owner."""
    for _ in range(5):  # a suffix already taken is astronomically rare; try another
        project_id = new_project_id(id_hint or name)
        try:
            with transaction.atomic():
                project = Project.objects.create(id=project_id, name=name or project_id, created_by=creator)
                ProjectMembership.objects.create(project=project, user=creator, role=ProjectRole.OWNER)
                audit.record(actor=creator, action=AuditAction.PROJECT_CREATED, project=project,
                             target=f"project:{project.pk}", details={"name": project.name})
            return project
        except IntegrityError:
            if not Project.objects.filter(id=project_id).exists():
                raise
    raise SubmissionError("could not choose a free project id; try again")


def _role(role: str) -> str:
    if role not in ProjectRole.values:
        raise SubmissionError(f"role must be one of {', '.join(ProjectRole.values)}, got {role!r}")
    return role


def _membership(project: Project, username: str) -> ProjectMembership:
    """The membership to change, after locking the project row: changes to one project's
    members queue behind each other, so two owners demoting each other at once cannot both
    succeed and leave the project without an owner."""
    Project.objects.select_for_update().filter(pk=project.pk).first()
    found = ProjectMembership.objects.select_related("user").filter(project=project, user__username=username).first()
    if found is None:
        # The same answer for a username that does not exist and for a user who is not a member.
        raise NotFound(f"No member '{username}' in project '{project.pk}'.")
    return found


def _owners_left(project: Project, without: ProjectMembership) -> int:
    return ProjectMembership.objects.filter(project=project, role=ProjectRole.OWNER).exclude(pk=without.pk).count()


def add_member(*, project: Project, username: str, role: str = ProjectRole.VIEWER, actor: Any = None
               ) -> ProjectMembership:
    role = _role(role)
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        # Inactive accounts read like missing ones.
        raise SubmissionError(f"No user '{username}'")
    with transaction.atomic():
        membership, created = ProjectMembership.objects.get_or_create(project=project, user=user,
                                                                      defaults={"role": role})
        if not created:
            raise MembershipConflict(f"'{username}' is already a member of project '{project.pk}' "
                                     f"({membership.role}); change the role instead.", role=membership.role)
        audit.record(actor=actor, action=AuditAction.MEMBER_ADDED, project=project, target=f"user:{username}",
                     details={"role": role})
    return membership


def change_role(*, project: Project, username: str, role: str, actor: Any = None) -> ProjectMembership:
    role = _role(role)
    with transaction.atomic():
        membership = _membership(project, username)
        previous = membership.role
        if previous == role:
            return membership
        if previous == ProjectRole.OWNER and not _owners_left(project, membership):
            raise MembershipConflict(f"'{username}' is the last owner of project '{project.pk}': make another "
                                     "member an owner first.")
        membership.role = role
        membership.save(update_fields=["role"])
        audit.record(actor=actor, action=AuditAction.MEMBER_ROLE_CHANGED, project=project,
                     target=f"user:{username}", details={"from": previous, "to": role})
    return membership


def remove_member(*, project: Project, username: str, actor: Any = None) -> None:
    with transaction.atomic():
        membership = _membership(project, username)
        if membership.role == ProjectRole.OWNER and not _owners_left(project, membership):
            raise MembershipConflict(f"'{username}' is the last owner of project '{project.pk}' and cannot be "
                                     "removed: make another member an owner first.")
        membership.delete()
        audit.record(actor=actor, action=AuditAction.MEMBER_REMOVED, project=project, target=f"user:{username}",
                     details={"role": membership.role})
