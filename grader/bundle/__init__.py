"""`grader bundle`: what is installed from the project. The instructor's wheel is the project as
it is (`pip wheel .`: every rubric, the reference module); `bundle_public` writes the students'
project and wheel, which hold the public checks only."""

from grader.bundle.public import BundleResult, bundle_public

__all__ = ["BundleResult", "bundle_public"]
