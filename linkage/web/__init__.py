"""The clerical review web app (issue 4): `create_app` builds it, `linkage serve` runs it."""
from linkage.web.app import create_app

__all__ = ["create_app"]
