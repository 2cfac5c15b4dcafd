"""`grader bundle`: what is installed from the project. The instructor's wheel is the project as
it is (`pip wheel .`: every rubric, the reference module, the data sources that build the hidden
split); `bundle_public` writes the students' project and wheel, which hold the public checks, the
published network and the students' data files only (see grader/bundle/public.py)."""

from grader.bundle.public import BundleResult, bundle_public

__all__ = ["BundleResult", "bundle_public"]
