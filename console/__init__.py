"""The order desk's console: a web workplace for the people who run orders (`python -m console`, port 8090).

Server-rendered pages (FastAPI + Jinja2), plain HTML forms that work with JavaScript blocked, English and
Simplified Chinese. It talks to the services over gRPC only (orderdesk.clients) and keeps its own database
for desk accounts and sessions (console/store.py).

    app.py          assembles the app: the screens' routers, the error pages, static files, middleware
    web.py          what every screen uses: requires(P), Desk, render, call, FormErrors, see_other
    rules.py        accounts, passwords, sign-in throttling/lock-out, session expiry (plain Python)
    accounts.py     desk accounts (the Accounts screen and `orderdesk users`)
    i18n.py         languages and Babel formatting; catalog.py: `python -m console.catalog`
    words.py        codes (statuses, hold reasons, roles) as words
    screens/        one module per screen;  templates/<screen>/ its pages;  static/ the one stylesheet
    orderdesk/roles.py  who may do what: the one table, and the approval limit rule

How to add a screen
-------------------
1. `console/screens/<screen>.py` with `router = APIRouter()` and, if it belongs in the navigation,
   `NAV = NavEntry(N_("Stock"), "/stock", Permission.READ, order=60)` (order: Today 10, Search 20,
   New order 30, Customers 40, Stock 60, Reports 70, Accounts 90). Nothing to register: every module of
   console/screens with a `router` is included (console/screens/__init__.py).
2. Every route names its permission with one dependency, GET and POST alike:
       @router.post("/orders/{order_id}/cancel")
       async def cancel(request: Request, order_id: str, desk: Desk = requires(Permission.CANCEL_ORDERS)):
   `requires` sends a person without a live session to sign in, refuses a role without the permission
   (403, a page naming the roles that may), and on POST checks the form's CSRF token first.
   tests/unit/console/test_routes.py fails for a route without it. A limit beyond the role (approving a
   held order) is checked in the handler: `desk.check_decision(order.currency, order.total_amount)`.
   New permissions go into orderdesk/roles.py (the one table) and its test, with words in console/words.py.
3. Call the services with `await web.call(request, web.services(request).orders.GetOrder, message)`:
   the answer, or `web.ServiceRefusal` (catch it to put `refusal.field_errors()` beside your fields;
   uncaught it becomes a page with the service's own message). Every call that changes something sends
   `actor=desk.actor(reason)`: the person (`desk:<email> (<role>)`, orderdesk/actors.py) and why.
   A form that creates something through intake carries a hidden idempotency key made when the form is
   shown (uuid4), so a second click or a reload creates nothing twice. Never open a service's database.
4. Pages: `web.render(request, "<screen>/<page>.html", {...})`; templates extend "base.html" (block title,
   block main) and `{% import "_forms.html" as forms with context %}` for fields: a visible label on every
   control, the error beside its field (`FormErrors`, messages marked `N_()` and shown translated), the CSRF
   token in every POST form (`forms.csrf()`). Bad input re-renders the form with status 422 and changes
   nothing; a POST that changed something answers `web.see_other(path)` (a `?done=<key>` on it lets the page
   show a `role="status"` notice, as screens/accounts.py does). Tables have <caption> and <th
   scope>; never colour alone (say it in words). Formatting filters: `| money(currency)`, `| number`,
   `| date`, `| datetime`, `| timestamp` (a protobuf Timestamp), `| age`; `lists.pager(...)` pages by
   the service's cursor (templates/_lists.html); words for codes: `status(code)`, `hold_reason(code)`, `role(code)`.
   A file upload raises the body limit for its path in console/middleware.py (UPLOAD_LIMITS). The
   Content-Security-Policy allows only the console's own files: no inline script or style, no CDN; the one
   script (live counts) goes to console/static/console.js, and every page must work without it.
5. Text: `_("…")` in templates and code, `N_("…")` where defined and translated later. Then run
   `.venv/bin/python -m console.catalog` and translate the new entries in
   console/locale/zh_Hans/LC_MESSAGES/messages.po (tests/unit/console/test_translations.py fails until you do).
6. Browser test: tests/browser/test_<screen>.py with the `page` fixture (the whole suite plus the console,
   started once per session; JavaScript blocked; a fresh browser per test) and tests/browser/desk.py:
   `sign_in(page, "clerk")`, `submit_order(suite, body)` (a partner's order through the gateway),
   `shot(page, "name")`. Find elements as a person would (get_by_role, get_by_label), assert with
   playwright's `expect`, and read back what changed. Each test leaves var/screenshots/<test>.png.
"""
