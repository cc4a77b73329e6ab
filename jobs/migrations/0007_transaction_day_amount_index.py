"""One (project, date, amount) index in place of (project, date) and (project, amount): it
serves every read by date, and reconciliation's candidate lookup by day and amount range
(docs/design.md, "Reconciliation"); one index fewer to maintain on every insert."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("jobs", "0006_base_currency"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="transaction",
            index=models.Index(fields=["project", "date", "amount"], name="transaction_day_amount"),
        ),
        migrations.RemoveIndex(
            model_name="transaction",
            name="transaction_project_date",
        ),
        migrations.RemoveIndex(
            model_name="transaction",
            name="transaction_project_amount",
        ),
    ]
