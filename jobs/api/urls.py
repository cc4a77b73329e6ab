from django.urls import re_path
from rest_framework.routers import DefaultRouter

from jobs.api.findings import FindingReviewsView
from jobs.api.operations import BreakerViewSet, DeadLetterViewSet
from jobs.api.results import JobResultsView, TransactionSimilarView
from jobs.api.views import BatchJobViewSet, ProjectViewSet


class Router(DefaultRouter):
    """The original design's clients call `/batch-jobs/{id}` without a trailing slash: accept both."""

    def __init__(self):
        super().__init__()
        self.trailing_slash = "/?"


router = Router()
router.register("batch-jobs", BatchJobViewSet, basename="batch-job")
router.register("projects", ProjectViewSet, basename="project")
router.register("dead-letters", DeadLetterViewSet, basename="dead-letter")
router.register("breakers", BreakerViewSet, basename="breaker")

urlpatterns = [
    re_path(r"^batch-jobs/(?P<pk>[0-9a-fA-F-]{32,36})/results/?$", JobResultsView.as_view(), name="batch-job-results"),
    re_path(r"^batch-jobs/(?P<pk>[0-9a-fA-F-]{32,36})/findings/(?P<rule>[^/]+)/(?P<external_id>[^/]+)/reviews/?$",
            FindingReviewsView.as_view(), name="batch-job-finding-reviews"),
    re_path(r"^projects/(?P<project_id>[^/]+)/transactions/(?P<external_id>[^/]+)/similar/?$",
            TransactionSimilarView.as_view(), name="project-transaction-similar"),
    *router.urls,
]
