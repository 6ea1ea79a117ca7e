"""A small Django project using asgi_kit's middleware through Django's MIDDLEWARE.

Run it from this directory::

    python manage.py runserver                       # WSGI (Django's dev server)
    uvicorn django_project.asgi:application          # ASGI (run from examples/)
    uvicorn django_project.asgi_wrapped:application  # ASGI, middleware wrapped around Django
"""
