"""The officers' workspace (contract §6): web pages for the desk, handlers and leaders.

A view over the domain services: the pages call their functions and keep no SQL of their own
beyond sign-in links and sessions. The domain services never import this package; the launch
package mounts it.
"""
