"""Who may do what: project roles and operator permissions, in one place for the API, the
pages and the admin (docs/operations.md, "Accounts and roles").

- A project's members each have a role: a viewer reads; an analyst also submits, cancels,
  retries, re-queues, saves mappings and reviews findings; an owner also manages members and
  reads the audit log.
- Operator powers are explicit Django permissions, checked for staff accounts only (the
  admin's own rule: staff lets a user in, permissions say what they may do):
  `jobs.operate_all_projects` reads every project and cancels, retries or re-queues any job;
  `jobs.force_breaker` forces circuit breakers. Being staff alone grants neither. Checking
  staff first also spares every ordinary user's status poll the permission queries.
- A project the caller may not see answers exactly like one that does not exist; a project
  they see but whose role is too low for the action answers 403 naming the role needed.
"""

from __future__ import annotations

from typing import Any

from jobs.errors import NotAllowed, NotFound, UnknownProject
from jobs.models import ProcessingJob, Project, ProjectMembership, ProjectRole

READ = "read"
SUBMIT = "submit jobs"
OPERATE = "cancel, retry or re-queue jobs"
SAVE_MAPPINGS = "save mappings"
MANAGE_MEMBERS = "manage members"
READ_AUDIT = "read the audit log"
REVIEW = "review findings"

# The lowest role that may do each action.
NEEDED_ROLE = {
    READ: ProjectRole.VIEWER,
    SUBMIT: ProjectRole.ANALYST,
    OPERATE: ProjectRole.ANALYST,
    SAVE_MAPPINGS: ProjectRole.ANALYST,
    MANAGE_MEMBERS: ProjectRole.OWNER,
    READ_AUDIT: ProjectRole.OWNER,
    REVIEW: ProjectRole.ANALYST,
}
RANK = {ProjectRole.VIEWER: 0, ProjectRole.ANALYST: 1, ProjectRole.OWNER: 2}
# What `jobs.operate_all_projects` allows in a project its holder is not an owner of.
OPERATOR_ACTIONS = (READ, OPERATE)

OPERATE_ALL_PROJECTS = "operate_all_projects"
FORCE_BREAKER = "force_breaker"


def is_operator(user: Any, permission: str = OPERATE_ALL_PROJECTS) -> bool:
    """Whether `user` holds the operator permission `jobs.<permission>`."""
    return bool(getattr(user, "is_authenticated", False) and user.is_active and user.is_staff
                and user.has_perm(f"jobs.{permission}"))


def role_in(user: Any, project: Project | str) -> str | None:
    """The user's role in the project, None for a non-member."""
    if not getattr(user, "is_authenticated", False):
        return None
    project_id = project.pk if isinstance(project, Project) else project
    return (ProjectMembership.objects.filter(project_id=project_id, user=user)
            .values_list("role", flat=True).first())


def role_allows(role: str | None, action: str) -> bool:
    return role is not None and RANK[role] >= RANK[NEEDED_ROLE[action]]


def may(user: Any, project: Project | str, action: str, *, role: str | None = None) -> bool:
    """Whether the user may do `action` in the project (`role` when the caller has it already)."""
    role = role if role is not None else role_in(user, project)
    return role_allows(role, action) or (action in OPERATOR_ACTIONS and is_operator(user))


def require(user: Any, project: Project, action: str) -> str | None:
    """Refuses with NotAllowed (403) unless the user may do `action` in a project they can
    see; returns their role (None for an operator who is not a member)."""
    role = role_in(user, project)
    if not may(user, project, action, role=role):
        needed = NEEDED_ROLE[action]
        held = f"your role is {role}" if role else "you are not a member"
        raise NotAllowed(f"To {action} in project '{project.pk}' you need the {needed} role ({held}); "
                         "ask one of its owners.", required_role=str(needed), role=role)
    return role


def visible_project(user: Any, project_id: str, *, in_body: bool = False) -> Project:
    """The project if the user may see it. Otherwise the same refusal whether it exists or
    not: 404 for a project named in the URL, the submission's 400 for one named in a body."""
    project = None
    if project_id and getattr(user, "is_authenticated", False):
        projects = Project.objects.filter(id=project_id)
        project = (projects if is_operator(user) else projects.filter(members=user)).first()
    if project is None:
        if in_body:
            raise UnknownProject(project_id)
        raise NotFound("Project not found.")
    return project


def project_for(user: Any, project_id: str, action: str = READ, *, in_body: bool = False) -> Project:
    """The project, if the user sees it and may do `action` in it (404/400, then 403)."""
    project = visible_project(user, project_id, in_body=in_body)
    require(user, project, action)
    return project


def check_job(user: Any, job: ProcessingJob, action: str) -> None:
    """For a job the caller already found through `visible_jobs`: may they do `action`?"""
    require(user, job.project, action)
