"""The job runner of the app serving a request (`app.state.jobs`), for the routers that start
or show jobs, and the one way a route starts a job (`StartJobDep`)."""

from typing import Annotated, Any

from fastapi import Depends, Request, Response

from sijill.jobs import service
from sijill.jobs.runner import JobRunner
from sijill.jobs.schemas import JobPublic
from sijill.security.deps import SettingsDep
from sijill.security.principal import Principal


async def get_runner(request: Request) -> JobRunner:
    return request.app.state.jobs


RunnerDep = Annotated[JobRunner, Depends(get_runner)]


class JobStart:
    """Starts a job for the request and answers as every long-work route does: 202 Accepted,
    `Location: /jobs/{id}`, and the job's state."""

    def __init__(
        self, request: Request, response: Response, runner: RunnerDep, settings: SettingsDep
    ):
        self.request, self.response, self.runner, self.settings = (
            request,
            response,
            runner,
            settings,
        )

    def __call__(self, kind: str, params: Any, principal: Principal) -> JobPublic:
        job = self.runner.start(kind, params, principal)
        location = self.request.url_for("read_job", job_id=str(job.id))
        self.response.headers["Location"] = str(location)
        return service.public(job, self.settings.work_dir)


StartJobDep = Annotated[JobStart, Depends()]
