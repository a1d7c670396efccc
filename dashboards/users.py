"""The signed-in user of a request (Flask-Login), and the role check every page, callback and
route makes on the server."""

from __future__ import annotations

from flask_login import UserMixin, current_user
from werkzeug.exceptions import Forbidden, Unauthorized

from cityops.platform.users import User

ROLE_NAMES = {
    "operations": "Operations centre",
    "admin": "Administrator",
    "grid_worker": "Grid worker",
    "civil_affairs": "Civil affairs",
    "hotline": "12345 hotline",
    "supervisor": "Supervisor",
}


class WebUser(UserMixin):
    """A signed-in user as Flask-Login sees it."""

    def __init__(self, user: User) -> None:
        self.user = user

    def get_id(self) -> str:
        return self.user.username

    @property
    def username(self) -> str:
        return self.user.username

    @property
    def role(self) -> str:
        return self.user.role

    @property
    def worker_id(self) -> str | None:
        return self.user.worker_id

    @property
    def display_name(self) -> str:
        return self.user.display_name


def signed_in() -> WebUser | None:
    """The signed-in user of this request, or None."""
    if not current_user.is_authenticated:
        return None
    user = current_user._get_current_object()  # the WebUser behind the proxy
    assert isinstance(user, WebUser)
    return user


def require_role(*roles: str) -> WebUser:
    """The signed-in user if their role is one of ``roles``; else 401 (anonymous) or 403."""
    user = signed_in()
    if user is None:
        raise Unauthorized("sign in first")
    if user.role not in roles:
        raise Forbidden(f"a {user.role} user may not do this")
    return user
