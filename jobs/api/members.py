"""A project's members, their roles and its audit log, as actions of the projects viewset
(jobs.api.views.ProjectViewSet):

- `GET  /api/v1/projects/{id}/members/`: every member and role (any member);
- `POST /api/v1/projects/{id}/members/ {"username", "role"}`: add a member (owners; the role
  defaults to viewer, the least that membership grants);
- `PATCH /api/v1/projects/{id}/members/{username}/ {"role"}`: change a role (owners);
- `DELETE /api/v1/projects/{id}/members/{username}/`: remove a member (owners, or members
  leaving); the last owner can be neither removed nor demoted (409);
- `GET  /api/v1/projects/{id}/audit/`: the project's audit log, newest first (owners).

Who may do what is decided by jobs.selectors.access; the changes themselves, their rules and
their audit entries by jobs.services.projects.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from jobs.api import serializers as s
from jobs.models import AuditEntry, ProjectMembership, ProjectRole
from jobs.selectors import access
from jobs.selectors import core as selectors
from jobs.services import projects as project_services

USERNAME = r"[^/]+"


class MembershipSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = ProjectMembership
        fields = ["username", "role", "added_at"]
        read_only_fields = fields


class AddMemberSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    role = serializers.ChoiceField(choices=ProjectRole.choices, default=ProjectRole.VIEWER)


class RoleSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=ProjectRole.choices)


class AuditEntrySerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_name", read_only=True)
    project_id = serializers.CharField(source="project_key", read_only=True)

    class Meta:
        model = AuditEntry
        fields = ["id", "at", "actor", "project_id", "action", "target", "details"]
        read_only_fields = fields


class ProjectAccessActions:
    """Mixed into ProjectViewSet: `get_object()` there already answers 404 for a project the
    caller cannot see, exactly as for one that does not exist."""

    @extend_schema(methods=["get"], responses=MembershipSerializer(many=True))
    @extend_schema(methods=["post"], request=AddMemberSerializer, responses=s.ProjectSerializer)
    @action(detail=True, methods=["get", "post"], pagination_class=None)
    def members(self, request, pk=None):
        project = self.get_object()
        if request.method == "GET":
            memberships = project.memberships.select_related("user").order_by("user__username")
            return Response(MembershipSerializer(memberships, many=True).data)
        access.require(request.user, project, access.MANAGE_MEMBERS)
        form = AddMemberSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        project_services.add_member(project=project, username=form.validated_data["username"],
                                    role=form.validated_data["role"], actor=request.user)
        return Response(self._project_body(project))

    @extend_schema(methods=["patch"], request=RoleSerializer, responses=s.ProjectSerializer)
    @extend_schema(methods=["delete"], request=None, responses={204: None})
    @action(detail=True, methods=["patch", "delete"], url_path=f"members/(?P<username>{USERNAME})",
            url_name="member")
    def member(self, request, pk=None, username=None):
        project = self.get_object()
        leaving = request.method == "DELETE" and username == request.user.get_username()
        if not leaving:  # anyone may leave a project (the last owner excepted, by the service)
            access.require(request.user, project, access.MANAGE_MEMBERS)
        if request.method == "DELETE":
            project_services.remove_member(project=project, username=username, actor=request.user)
            return Response(status=status.HTTP_204_NO_CONTENT)
        form = RoleSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        project_services.change_role(project=project, username=username, role=form.validated_data["role"],
                                     actor=request.user)
        return Response(self._project_body(project))

    @extend_schema(responses=AuditEntrySerializer(many=True), parameters=[
        OpenApiParameter("action", str, description="Only entries of this action, e.g. job.cancelled.")])
    @action(detail=True, methods=["get"])
    def audit(self, request, pk=None):
        """Who submitted, cancelled, retried or re-queued jobs, changed members or saved mappings, and when."""
        project = self.get_object()
        access.require(request.user, project, access.READ_AUDIT)
        entries = selectors.audit_entries(project)
        if request.query_params.get("action"):
            entries = entries.filter(action=request.query_params["action"])
        page = self.paginate_queryset(entries)
        return self.get_paginated_response(AuditEntrySerializer(page, many=True).data)

    def _project_body(self, project) -> dict:
        project = self.get_queryset().get(pk=project.pk)
        return self.get_serializer(project).data
