// Command postee-action-awssecurityhub is the postee action plugin of type
// "awssecurityhub": it imports the AWS Security Finding Format (ASFF)
// findings of the rendered message description (for example Trivy's ASFF
// output passed through the postee.rawmessage.json template) into AWS
// Security Hub with BatchImportFindings, at most 100 findings a call,
// exactly as the template produced them.
//
// Region, credentials and endpoint come from the AWS SDK's default chain
// (environment, shared config files, web identity, container and instance
// metadata). See README.md.
package main
