from django import forms
from django.conf import settings


class TokenCreateForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What uses it, e.g. “laptop mlflow client”.")
    expires_in_days = forms.IntegerField(
        min_value=1,
        max_value=settings.TOKEN_MAX_EXPIRY_DAYS,
        initial=settings.TOKEN_DEFAULT_EXPIRY_DAYS,
        label="Expires in (days)",
    )
