"""MLflow request-auth provider ``kedro-mlflow-runs-userinfo``: the basic auth of a tracking URI's
userinfo that MLflow's own variables cannot carry.

MLflow hands ``requests`` the tracking URI as it is, and ``requests`` turns a userinfo holding a
``:`` into basic auth, also when one part is empty (``http://TOKEN:@host`` sends ``TOKEN:``).
``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD`` need both parts, so for such a URI the
plugin takes the userinfo out of the URI (nothing prints or publishes it), sets
``MLFLOW_TRACKING_AUTH=kedro-mlflow-runs-userinfo`` and puts the userinfo in
``KEDRO_MLFLOW_RUNS_TRACKING_USERINFO``, for the run only (see ``_redact.split_credentials``).
MLflow finds this class through the ``mlflow.request_auth_provider`` entry point, in every process
that inherits the run's environment (spawned workers too), and asks it for the auth of each request.
"""

from __future__ import annotations

import os
from typing import Any

from .._redact import USERINFO_AUTH_ENV_VAR, USERINFO_AUTH_NAME

__all__ = ["UserinfoAuthProvider"]


class UserinfoAuthProvider:
    """What MLflow's ``RequestAuthProvider`` registry calls (``get_name``, ``get_auth``)."""

    def get_name(self) -> str:
        """The value of ``MLFLOW_TRACKING_AUTH`` that selects this provider."""
        return USERINFO_AUTH_NAME

    def get_auth(self) -> Any:
        """``requests``' basic auth of the published userinfo, decoded as ``requests`` decodes a
        URL's; None when none is published."""
        userinfo = os.environ.get(USERINFO_AUTH_ENV_VAR)
        if userinfo is None:
            return None
        from urllib.parse import unquote

        from requests.auth import HTTPBasicAuth

        user, _, password = userinfo.partition(":")
        return HTTPBasicAuth(unquote(user), unquote(password))
