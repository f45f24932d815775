from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def copy_experiment_ids(apps, schema_editor):
    latest_metric = apps.get_model("tracking", "LatestMetric")
    run = apps.get_model("tracking", "Run")
    latest_metric.objects.update(
        experiment_id=Subquery(run.objects.filter(pk=OuterRef("run_id")).values("experiment_id")[:1])
    )


class Migration(migrations.Migration):
    dependencies = [("tracking", "0002_drop_long_value_indexes")]

    operations = [
        migrations.RemoveIndex(model_name="latestmetric", name="latest_metric_key_value_idx"),
        migrations.AddField(
            model_name="latestmetric",
            name="experiment",
            field=models.ForeignKey(
                null=True,
                db_index=False,
                on_delete=models.deletion.CASCADE,
                related_name="+",
                to="tracking.experiment",
            ),
        ),
        migrations.RunPython(copy_experiment_ids, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="latestmetric",
            name="experiment",
            field=models.ForeignKey(
                db_index=False,
                on_delete=models.deletion.CASCADE,
                related_name="+",
                to="tracking.experiment",
            ),
        ),
        migrations.AddIndex(
            model_name="latestmetric",
            index=models.Index(fields=["experiment", "key", "value"], name="latestmetric_exp_key_val_idx"),
        ),
    ]
