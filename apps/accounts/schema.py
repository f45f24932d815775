"""OpenAPI descriptions of the token authentication schemes (drf-spectacular extensions)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "apps.accounts.authentication.BearerTokenAuthentication"
    name = "personalAccessToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "A personal access token (cw_…)."}


class BasicTokenScheme(OpenApiAuthenticationExtension):
    target_class = "apps.accounts.authentication.BasicTokenAuthentication"
    name = "basicWithToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "basic", "description": "Username, and a personal access token as password."}
