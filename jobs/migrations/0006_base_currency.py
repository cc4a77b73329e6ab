# A project's base currency, and whether a stored transaction's currency was inferred from it
# or from the job's default (issue 19). Database defaults as well: the release before this
# one, still running during a rolling upgrade, inserts rows without these columns.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('jobs', '0005_finding_reviews'),
    ]

    operations = [
        migrations.AddField(
            model_name='project',
            name='base_currency',
            field=models.CharField(blank=True, db_default='', default='', max_length=3),
        ),
        migrations.AddField(
            model_name='transaction',
            name='currency_inferred',
            field=models.BooleanField(db_default=False, default=False),
        ),
    ]
