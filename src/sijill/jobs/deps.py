"""The job runner of the app serving a request (`app.state.jobs`), for the routers that start
or show jobs."""

from typing import Annotated

from fastapi import Depends, Request

from sijill.jobs.runner import JobRunner


async def get_runner(request: Request) -> JobRunner:
    return request.app.state.jobs


RunnerDep = Annotated[JobRunner, Depends(get_runner)]
