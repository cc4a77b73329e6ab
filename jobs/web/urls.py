from django.urls import path

from jobs.web import findings, results_pages, views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("jobs/", views.job_list, name="job-list"),
    path("jobs/new/", views.job_new, name="job-new"),
    path("jobs/active.json", views.active_jobs, name="jobs-active"),
    path("jobs/<uuid:job_id>/", views.job_detail, name="job-detail"),
    path("jobs/<uuid:job_id>/progress.json", views.job_progress, name="job-progress"),
    path("jobs/<uuid:job_id>/cancel/", views.job_cancel, name="job-cancel"),
    path("jobs/<uuid:job_id>/retry/", views.job_retry, name="job-retry"),
    path("jobs/<uuid:job_id>/reconciliation/", results_pages.reconciliation_view, name="job-reconciliation"),
    path("jobs/<uuid:job_id>/entities/", results_pages.entity_groups_view, name="job-entities"),
    path("projects/<slug:project_id>/transactions/<path:external_id>/", results_pages.transaction_detail,
         name="transaction-detail"),
    path("transactions/<int:pk>/", results_pages.transaction_by_pk, name="transaction-by-pk"),
    path("jobs/<uuid:job_id>/findings/", findings.findings_browser, name="job-findings"),
    path("jobs/<uuid:job_id>/findings/reviewed.csv", findings.reviewed_csv, name="job-findings-reviewed-csv"),
    path("jobs/<uuid:job_id>/findings/<int:finding_id>/", findings.finding_detail, name="finding-detail"),
    path("jobs/<uuid:job_id>/findings/<int:finding_id>/review/", findings.finding_review, name="finding-review"),
]
