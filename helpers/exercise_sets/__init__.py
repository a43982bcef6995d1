"""Exercises and questionnaire of each notebook: ``from helpers.exercise_sets import nb01 as ex``."""
