"""Projects and their members."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction

from jobs.errors import SubmissionError
from jobs.models import Project


def create_project(project_id: str, name: str, creator) -> Project:
    """Creates a project; its creator is its first member."""
    with transaction.atomic():
        project = Project.objects.create(id=project_id, name=name or project_id, created_by=creator)
        project.members.add(creator)
    return project


def add_member(project: Project, username: str) -> Project:
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise SubmissionError(f"Unknown user '{username}'")
    project.members.add(user)
    return project
